"""Robot-side runtime for exported policies (numpy + onnxruntime + yaml only; never torch or mujoco)."""
