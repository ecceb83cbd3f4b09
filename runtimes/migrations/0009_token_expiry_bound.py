from django.db import migrations

# Tokens saved before expiry was bounded with an expiry past year 9999 could be neither read
# back nor listed: each now expires at the bound (3650 days) from now, still far beyond any
# daemon's life.
CLAMP = """
UPDATE daemon_token SET expires_at = now() + interval '3650 days'
WHERE expires_at > now() + interval '3650 days'
"""


class Migration(migrations.Migration):
    dependencies = [("runtimes", "0008_board")]

    operations = [migrations.RunSQL(CLAMP, migrations.RunSQL.noop)]
