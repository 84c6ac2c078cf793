"""Several Rasa replicas on one machine (`keymedic cluster`, `make run-cluster`; docs/deploy.md).

- `stores`: which PostgreSQL databases and which Redis a cluster shares, from the settings.
- `topology`: the processes of a cluster (built from `bot.launcher.local_services`) and their environment.
- `haproxy`: the configuration of HAProxy, the balancer in front of the Rasa replicas and the action servers.
- `cli`: `keymedic cluster`.
"""
