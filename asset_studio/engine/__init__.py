"""Model loading, pipelines, adapters, ControlNet and background removal (torch lives here)."""
