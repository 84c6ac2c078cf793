"""`keymedic agent`: the support agents and automations that may use the agent API (docs/handoff.md "Agents").

keymedic agent add EMAIL --name NAME [--automation]   prints the new credential, once (and, for a person,
                                                      a one-time link to set a console password, 24 h)
keymedic agent password-link EMAIL                    a new one-time set-password link (earlier ones end)
keymedic agent rotate EMAIL                           a new credential; the old ones stop working
keymedic agent disable EMAIL                          the agent's credentials stop working at once
keymedic agent link-slack EMAIL --slack-user TEAM:USER  that Slack user acts as the agent in the support
                                                      channel (docs/slack.md "The support channel")
keymedic agent list
"""

from __future__ import annotations

import argparse

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="agent_command", required=True)
    add = sub.add_parser("add", help="add an agent and print its API credential (shown once)")
    add.add_argument("email")
    add.add_argument("--name", required=True, help="the name users see on the agent's replies")
    add.add_argument("--automation", action="store_true", help="an integration, not a person")
    rotate = sub.add_parser("rotate", help="replace an agent's credential (prints the new one, once)")
    rotate.add_argument("email")
    link = sub.add_parser("password-link", help="print a one-time link to set the console password (24 h)")
    link.add_argument("email")
    disable = sub.add_parser("disable", help="disable an agent; its credentials stop working")
    disable.add_argument("email")
    slack = sub.add_parser("link-slack", help="let a Slack user act as this agent in the support channel")
    slack.add_argument("email")
    slack.add_argument("--slack-user", required=True, metavar="TEAM:USER", help="Slack team and user ids")
    sub.add_parser("list", help="list the agents")


def run(args: argparse.Namespace) -> int:
    from bot.config import load_settings
    from bot.store import agent_signin, agent_slack, agents
    from bot.store.unit_of_work import UnitOfWorkFactory

    settings = load_settings()
    factory = UnitOfWorkFactory(settings)

    def print_link(email: str) -> None:
        # The token rides in the fragment: browsers never send it, so no access log or proxy records it.
        token = agent_signin.issue_password_link(factory(), email)
        print(f"Console password link for {email} (one use, valid 24 hours):")
        print(f"{settings.web_base_url}/agent/set-password#token={token}")

    try:
        if args.agent_command == "add":
            kind = agents.AUTOMATION if args.automation else agents.HUMAN
            agent, token = agents.add_agent(factory(), email=args.email, name=args.name, kind=kind)
            print(f"agent: added {agent.email} ({agent.kind}).")
            if agent.kind == agents.HUMAN:
                print_link(agent.email)
            # Last, so scripts that read the final line keep working.
            print("Its API credential, shown only now:")
            print(token)
        elif args.agent_command == "password-link":
            print_link(args.email.strip().lower())
        elif args.agent_command == "rotate":
            token = agents.issue_credential(factory(), args.email)
            print(f"agent: new credential for {args.email.strip().lower()}; the old ones no longer work:")
            print(token)
        elif args.agent_command == "link-slack":
            team, user = agent_slack.parse_slack_user(args.slack_user)
            agent = agent_slack.link_slack_user(factory(), args.email, team, user)
            print(f"agent: Slack user {team}:{user} acts as {agent.email} in the support channel")
        elif args.agent_command == "disable":
            changed = agents.disable_agent(factory(), args.email)
            state = "disabled, console sessions ended" if changed else "was disabled already"
            print(f"agent: {args.email.strip().lower()} {state}")
        else:
            for agent in agents.list_agents(factory()):
                state = "disabled" if agent.disabled else "enabled"
                print(f"{agent.email}\t{agent.name}\t{agent.kind}\t{state}\t{agent.created_at:%Y-%m-%d}")
    except agents.AgentError as error:
        print(f"agent: {error}")
        return 2
    finally:
        factory.database.dispose()
    return 0
