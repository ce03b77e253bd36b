"""Combine rules and sampler-level logic: the functions our nodes hang on ComfyUI's pre/post-CFG lists."""
