"""The one hook layer that reaches self/joint attention and blocks of every architecture ComfyUI runs."""
