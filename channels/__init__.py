"""KeyMedic's Rasa input channels (DESIGN §5, §6; docs/channels.md).

- `rest.RedactingRestInput`: Rasa's REST channel (local runs and tests only) with secrets taken out of every
  message before Rasa sees it.
- `socketio.VerifiedSocketIOInput`: the chat widget's socket.io channel: the host app's JWT decides who the
  user is and which conversation they are in; the Origin must be one of the configured ones; messages are
  redacted like the REST channel's.
- `screening`: the redaction step both share. `identity`: the widget JWT check, framework-free.

Rasa loads these by module path from `credentials.yml` (`channels.rest.RedactingRestInput:`); it runs with the
project root as its working directory and puts that on `sys.path`, so the package needs no installing.
"""
