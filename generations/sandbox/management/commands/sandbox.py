"""Manage the built-in sandbox's accounts: issue a key, list accounts, add credits."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from generations.sandbox.models import SandboxAccount


class Command(BaseCommand):
    help = "Manage sandbox accounts (the simulated PixVerse server's keys and credits)."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        issue = actions.add_parser("issue-key", help="Create an account; print its key once.")
        issue.add_argument("--label", required=True)
        issue.add_argument("--credits", type=int, help="Default: SANDBOX_STARTING_CREDITS.")
        issue.add_argument("--concurrency", type=int, help="Default: SANDBOX_CONCURRENCY.")
        issue.add_argument("--dialect", choices=SandboxAccount.Dialect.values, default="real")
        actions.add_parser("accounts", help="List accounts and their credits.")
        credit = actions.add_parser("add-credits", help="Add package credits to an account.")
        credit.add_argument("account_id", type=int)
        credit.add_argument("credits", type=int)

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "issue-key":
            fields = {"dialect": options["dialect"]}
            if options["concurrency"] is not None:
                fields["concurrency_limit"] = options["concurrency"]
            account, raw_key = SandboxAccount.issue(
                options["label"], credits=options["credits"], **fields
            )
            self.stderr.write(f"account {account.account_id} ({account.credits} credits); "
                              "the key is shown once:")
            self.stdout.write(raw_key)
        elif action == "accounts":
            for account in SandboxAccount.objects.order_by("created"):
                self.stdout.write(
                    f"{account.account_id}\t{account.label}\t…{account.key_last4}\t"
                    f"{account.credit_monthly}+{account.credit_package} credits"
                )
        else:
            updated = SandboxAccount.objects.filter(account_id=options["account_id"])
            if not updated.exists():
                raise CommandError(f"No sandbox account {options['account_id']}.")
            account = updated.get()
            account.credit_package += options["credits"]
            account.save(update_fields=["credit_package"])
            self.stdout.write(f"{account.account_id}: {account.credits} credits")
