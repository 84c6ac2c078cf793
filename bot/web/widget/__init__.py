"""The chat widget (docs/widget.md): its web routes (`routes`), the demo sign-in of a local run (`demo`) and
the conversation history it shows after a page reload (`history`, also used by the socket.io channel)."""
