"""placeholder"""

from werkzeug.wrappers import Request, Response


class GreengrassV2Provider:
    def __init__(self, ctx):
        self.ctx = ctx

    def handle(self, request: Request) -> Response | None:
        return None
