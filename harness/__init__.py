"""The test harness the suite and the scripts share: where ComfyUI and the pack are (runtime_paths), tiny random-weight
models of every family (tiny_models), stand-in model files and workflow substitution (standins, workflow_format), a
real ComfyUI server driven over HTTP (comfy_server), and the README's generated blocks (support_matrix,
measured_figures). Its modules are imported by name with this folder on sys.path (tests/conftest.py, the scripts)."""
