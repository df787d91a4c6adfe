"""Front-ends that speak other protocols (OpenAI HTTP, Wyoming) as thin
adapters onto the one session/scheduler core: each drives a ``LocalPeer``."""
