"""The sweep's servers: check the given ones before anything is queued, or start local headless ones."""
import os

from .comfy_server import ComfyServer, ServerError, find_comfyui
from .graph import SpecError


def object_infos(remotes: list) -> list[dict]:
    """GET /object_info of every server; one clear line for a server that cannot be reached."""
    infos = []
    for remote in remotes:
        try:
            infos.append(remote.client.object_info())
        except (ServerError, OSError, ValueError) as error:
            reason = getattr(error, "reason", None) or str(error).splitlines()[0]
            raise SpecError(f"server {remote.url}: unreachable ({reason})") from None
    return infos


def check_node_types(remotes: list, infos: list[dict], needed: set) -> None:
    """One clear line for a server that lacks a node type the cells use."""
    for remote, info in zip(remotes, infos):
        missing = sorted(needed - set(info))
        if missing:
            raise SpecError(f"server {remote.url} lacks node types the sweep uses: {', '.join(missing)} "
                            "(is Guidance Zoo, or the workflow's other packs, installed there?)")


def start_local(args) -> list[ComfyServer]:
    """Start args.local headless ComfyUI servers (loopback, own temp base folder, this pack) side by side."""
    comfyui = args.comfyui or find_comfyui()
    models = args.models or os.path.join(comfyui, "models")
    servers = [ComfyServer(models_dir=models, comfyui=comfyui, cpu=args.cpu,
                           extra_args=("--use-pytorch-cross-attention",) if args.cpu else ())
               for _ in range(args.local)]
    print(f"starting {len(servers)} local ComfyUI server(s) from {comfyui} ...", flush=True)
    try:
        for server in servers:
            server.launch()
        for server in servers:
            server.wait_ready()
    except ServerError as error:
        for server in servers:
            server.stop()
        raise SpecError(f"a local server did not start: {error}") from None
    return servers
