"""Running jobs on ComfyUI servers over their HTTP + WebSocket API: one server or a pool of them.

graph.py turns a job into a ComfyUI graph (pure data), client.py talks to one server, pool.py
shares images among servers, backend.py is the core.backend.Backend the service drives.
No torch and no engine imports here: a machine without a GPU drives a farm.
"""
