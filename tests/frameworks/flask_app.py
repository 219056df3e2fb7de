"""The Flask app of tests/e2e_frameworks.py: routes only, no business.

Each route answers "RAN <method> <route>" with the method its view sees, so
the test knows which view a request reached and as what. Flask as Debian
ships it (python3-flask 2.2, Werkzeug 2.2) on Werkzeug's own threaded
server, default routing (case-sensitive, strict slashes and merged slashes
answered by a redirect, not run). There is no `flask` personality: the
test judges it as `generic`. Usage: python3 flask_app.py PORT
"""
import logging
import sys

from flask import Flask, request

app = Flask(__name__)
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH"]


def ran(route):
    return "RAN %s %s\n" % (request.method, route), 200, {"Content-Type": "text/plain"}


@app.route("/v1/orders", methods=METHODS)
def orders():
    return ran("orders")


@app.route("/v1/orders/<oid>", methods=METHODS)
def order(oid):
    return ran("order")


@app.route("/v1/admin/users", methods=METHODS)
def admin():
    return ran("admin")


if __name__ == "__main__":
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app.run(host="127.0.0.1", port=int(sys.argv[1]), threaded=True)
