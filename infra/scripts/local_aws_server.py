"""moto in server mode, with DynamoDB's atomicity.

Real DynamoDB applies a conditional write or a transaction atomically: two
writers conditioned on the same version cannot both succeed, and a reader
never sees half a transaction. moto's threaded server checks and writes
without a lock, so concurrent requests can interleave. This launcher runs
moto's own server and serialises DynamoDB requests (only those; SQS long
polls, KMS and S3 stay concurrent), so that tests of vcare's conditional
writes test vcare, not a race in the stand-in.

Usage: python local_aws_server.py -H 127.0.0.1 -p PORT
"""

import threading

import moto.server

_dynamodb = threading.Lock()


class SerialDynamoDB:
    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target.startswith("DynamoDB_"):
            with _dynamodb:
                # Read the whole response inside the lock.
                return list(self.app(environ, start_response))
        return self.app(environ, start_response)


_run_simple = moto.server.run_simple


def _run_serial(host, port, app, **kwargs):
    _run_simple(host, port, SerialDynamoDB(app), **kwargs)


moto.server.run_simple = _run_serial

if __name__ == "__main__":
    moto.server.main()
