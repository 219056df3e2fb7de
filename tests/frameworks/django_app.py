"""The Django app of tests/e2e_frameworks.py: routes only, no business.

Each route answers "RAN <method> <route>" with the method its view sees, so
the test knows which view a request reached and as what. Django as Debian
ships it (python3-django 3.2) served by its own `runserver` (threaded,
no reloader), default URL resolution (case-sensitive, no APPEND_SLASH:
no middleware at all). Usage: python3 django_app.py PORT
"""
import sys

from django.conf import settings

settings.configure(DEBUG=False, ALLOWED_HOSTS=["*"], ROOT_URLCONF=__name__, MIDDLEWARE=[],
                   INSTALLED_APPS=[], SECRET_KEY="kw-e2e-frameworks-not-a-secret" * 2)

import django  # noqa: E402  (after settings.configure, as Django requires)
from django.core.management import call_command  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.urls import path  # noqa: E402


def ran(route):
    def view(request, **kw):
        return HttpResponse("RAN %s %s\n" % (request.method, route), content_type="text/plain")
    return view


urlpatterns = [
    path("v1/orders", ran("orders")),
    path("v1/orders/<str:id>", ran("order")),
    path("v1/admin/users", ran("admin")),
]

if __name__ == "__main__":
    django.setup()
    call_command("runserver", "127.0.0.1:%s" % sys.argv[1], use_reloader=False)
