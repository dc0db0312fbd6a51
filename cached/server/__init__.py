"""The daemon: gRPC servicers over the pipeline and the store, and the composition root that wires them."""
