"""The serving benchmark's floor: a WSGI app that answers every request with a constant.

Served by the same `make serve` settings, it shows what the server itself
costs per request: no app served that way can be faster.

    gunicorn bench.floor_app:app
"""

ANSWER = b'{"predictions":[1],"version":"v0001"}\n'


def app(environ, start_response):
    length = environ.get("CONTENT_LENGTH")
    if length:
        environ["wsgi.input"].read(int(length))
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(ANSWER)))])
    return [ANSWER]
