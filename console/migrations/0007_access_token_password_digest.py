import hashlib

from django.db import migrations, models


def bind_existing_tokens(apps, schema_editor):
    # Tokens issued before this change are bound to their user's current password (the same
    # digest as console.models.password_digest, which a migration may not import).
    AccessToken = apps.get_model("console", "AccessToken")
    for token in AccessToken.objects.select_related("user").iterator():
        token.password_digest = hashlib.sha256(f"fleet-token-password:{token.user.password}".encode()).hexdigest()
        token.save(update_fields=["password_digest"])


class Migration(migrations.Migration):
    dependencies = [("console", "0006_product_device_count")]

    operations = [
        migrations.AddField(
            model_name="accesstoken",
            name="password_digest",
            field=models.CharField(default="", editable=False, max_length=64),
            preserve_default=False,
        ),
        migrations.RunPython(bind_existing_tokens, migrations.RunPython.noop),
    ]
