"""`manage.py load_demo`: the LLMBar demo campaign and demo users; running it again is harmless."""

import json

from django.core.management.base import BaseCommand

from annotate.services.demo import demo_load, demo_password


class Command(BaseCommand):
    help = "Load the demo campaign (LLMBar Natural, with GPT-4 verdicts) and the demo users."

    def handle(self, *args, **opts):
        password, _new = demo_password()
        summary = demo_load(password=password)
        self.stdout.write(json.dumps({k: v for k, v in summary.items() if k != "users"}))
        self.stdout.write(
            "Demo users: admin (staff) and "
            + ", ".join(summary["users"]["annotators"])
            + f" — password: {password}"
            + ("" if _new else "  (from DEMO_PASSWORD or var/demo_password)")
        )
