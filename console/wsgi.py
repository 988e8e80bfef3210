import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
application = get_wsgi_application()

# The device gateway's paths skip the console's middleware (firmware.gateway).
from firmware.gateway import with_lean_gateway  # noqa: E402

application = with_lean_gateway(application)
