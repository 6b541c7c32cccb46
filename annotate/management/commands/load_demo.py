"""`manage.py load_demo`: the LLMBar demo campaign and demo users; running it again is harmless."""

import json

from django.conf import settings
from django.core.management.base import BaseCommand

from annotate.services.demo import ADMIN_PASSWORD_FILE, demo_load, demo_password


class Command(BaseCommand):
    help = (
        "Load the demo campaign (LLMBar Natural, with GPT-4 verdicts) and the demo users. The admin gets a "
        "password of its own once, printed once; later runs never change it."
    )

    def handle(self, *args, **opts):
        password, new = demo_password()
        summary = demo_load(password=password)
        self.stdout.write(json.dumps({k: v for k, v in summary.items() if k != "users"}))
        annotators = ", ".join(summary["users"]["annotators"])
        where = "" if new else "  (from DEMO_PASSWORD or var/demo_password)"
        self.stdout.write(f"Demo annotators: {annotators} — password: {password}{where}")
        admin = summary["users"]["admin"]
        if admin["password"] is None:
            self.stdout.write(
                f"Demo admin: {admin['username']} — password unchanged (set when it was created; "
                f"a generated one is in {settings.VAR_DIR / ADMIN_PASSWORD_FILE})"
            )
        elif admin["source"] == "TANDEM_DEMO_ADMIN_PASSWORD":
            self.stdout.write(f"Demo admin: {admin['username']} — password from TANDEM_DEMO_ADMIN_PASSWORD")
        else:
            self.stdout.write(
                f"Demo admin: {admin['username']} — password: {admin['password']}  "
                f"(shown this once; kept in {admin['source']}, readable by you only)"
            )
