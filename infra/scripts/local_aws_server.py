"""moto in server mode, with DynamoDB's atomicity.

Real DynamoDB applies a conditional write or a transaction atomically: two
writers conditioned on the same version cannot both succeed, and a reader
never sees half a transaction. moto's threaded server checks and writes
without a lock, so concurrent requests can interleave. This launcher runs
moto's own server and serialises DynamoDB requests (only those; SQS long
polls, KMS and S3 stay concurrent), so that tests of vcare's conditional
writes test vcare, not a race in the stand-in.

It also replaces moto's TransactWriteItems, which deep-copies every table it
touches (items and stream records) to be able to roll back: a transaction
cost grew with the table, ~240 ms at 3,000 items. Under the lock above the
same semantics need no copy: check every condition first, and write only
when all hold (undoing the written items should a write itself fail).

And it makes moto's SQS long polls wait instead of spin (see
_wait_for_messages), and its SQS queue attributes lazy. moto computes every
attribute of a queue, among them three message counts that walk all its
messages, whenever it reads one of them (on every send, for
ContentBasedDeduplication; on every message received, for the retention
period). A queue nobody drains (the domain-events queue in tests) made
each send O(messages): a 1,500-notification soak spent most of its time
there. The mapping below computes an attribute only when it is read.

And it checks presigned S3 URLs as S3 does, which moto does not: a
request whose query carries `X-Amz-Signature` is verified (SigV4, query
form: the path, every query parameter but the signature, every signed
header as sent, `UNSIGNED-PAYLOAD`) with the endpoint's credentials
(AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, default `testing`), and
refused with S3's own 403 (`SignatureDoesNotMatch`, `AccessDenied` when
expired). So a URL presigned for one key, content type or encryption
cannot be used for another, here as in AWS.

Usage: python local_aws_server.py -H 127.0.0.1 -p PORT
"""

import copy
import hashlib
import hmac
import json
import os
import threading
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl, quote
from collections.abc import Mapping

import moto.server
from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.sqs.models import Queue
from moto.core.utils import camelcase_to_underscores

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


def _key_of(table, op_type, op):
    if op_type != "Put":
        return op["Key"]
    attrs = op["Item"]
    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = attrs[table.range_key_attr]
    return key


def transact_write_items(self, transact_items):
    """All conditions, then all writes; DynamoDB's answers and reasons."""
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    seen, planned, reasons = set(), [], []
    for entry in transact_items:
        if len(entry) > 1:
            raise TransactWriteSingleOpException
        op_type, op = next(iter(entry.items()))
        old = None
        try:
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")
            table = self.get_table(op["TableName"])
            key = _key_of(table, op_type, op)
            unique = (str(op["TableName"]), str(dict(sorted(key.items()))))
            if unique in seen:
                raise MultipleTransactionsException()
            seen.add(unique)
            current = self.get_item(op["TableName"], key)
            condition = op.get("ConditionExpression")
            if condition is not None:
                check = get_filter_expression(
                    condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
                )
                if not check.expr(current):
                    if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                        old = current.to_json()["Attributes"]
                    raise ConditionalCheckFailed(item=old)
            planned.append((op_type, op, key, table, current))
            reasons.append((None, None, None))
        except (MultipleTransactionsException, MockValidationException):
            raise
        except ConditionalCheckFailed as e:
            reasons.append(("ConditionalCheckFailed", str(e.message), old))
        except Exception as e:  # noqa: BLE001 - reported per item, as moto does
            reasons.append((type(e).__name__, str(e), old))
    if any(code is not None for code, _, _ in reasons):
        raise TransactionCanceledException(reasons)

    streams = {id(t): (t, len(t.stream_shard.items)) for *_, t, _ in planned if t.stream_shard is not None}
    undo = [(op["TableName"], key, copy.deepcopy(current)) for _, op, key, _, current in planned]
    try:
        for op_type, op, key, _, _ in planned:
            names, values = op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
            if op_type == "Put":
                self.put_item(op["TableName"], op["Item"])
            elif op_type == "Delete":
                self.delete_item(op["TableName"], key)
            elif op_type == "Update":
                self.update_item(
                    op["TableName"],
                    key,
                    update_expression=op["UpdateExpression"],
                    expression_attribute_names=names,
                    expression_attribute_values=values,
                )
    except Exception:
        for table_name, key, current in reversed(undo):
            if current is None:
                self.delete_item(table_name, key)
            else:
                self.put_item(table_name, current.to_json()["Attributes"])
        for table, length in streams.values():
            del table.stream_shard.items[length:]
        raise


DynamoDBBackend.transact_write_items = transact_write_items

class _LazyQueueAttributes(Mapping):
    """moto's Queue.attributes, each value computed when read."""

    def __init__(self, queue):
        self._queue = queue
        names = list(queue.BASE_ATTRIBUTES)
        if queue.fifo_queue:
            names += queue.FIFO_ATTRIBUTES
        if queue.kms_master_key_id:
            names += queue.KMS_ATTRIBUTES
        if queue.policy:
            names.append("Policy")
        if queue.redrive_policy:
            names.append("RedrivePolicy")
        self._names = names

    def __getitem__(self, name):
        if name not in self._names:
            raise KeyError(name)
        queue = self._queue
        if name == "Policy":
            return queue.policy
        if name == "RedrivePolicy":
            return json.dumps(queue.redrive_policy)
        value = getattr(queue, camelcase_to_underscores(name))
        return str(value).lower() if isinstance(value, bool) else value

    def __iter__(self):
        return iter(self._names)

    def __len__(self):
        return len(self._names)


Queue.attributes = property(_LazyQueueAttributes)


def _wait_for_messages(self, timeout):
    """Waits until the queue changes (a message added) or `timeout` passes.

    moto's own waits for "any visible message". A FIFO queue whose visible
    messages all belong to groups already in flight has some, so its
    receive loop returned at once and spun for the whole long poll — a
    deep copy and a scan each turn, holding the GIL — and every poller of
    a busy FIFO queue starved the rest of the endpoint (DynamoDB calls
    timed out). Waiting on the condition instead costs a message that
    becomes receivable without an add (its group released, its visibility
    ended) at most `timeout` (1 s) of latency.
    """
    with self._messages_lock:
        self._messages_lock.wait(timeout=timeout)


Queue.wait_for_messages = _wait_for_messages

def _sigv4_key(secret, date, region, service):
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _header(environ, name):
    if name == "content-type":
        return environ.get("CONTENT_TYPE", "")
    if name == "content-length":
        return environ.get("CONTENT_LENGTH", "")
    return environ.get("HTTP_" + name.upper().replace("-", "_"), "")


def presigned_refusal(environ, now=None):
    """None if the request is not presigned or its signature holds, else
    (S3 error code, message)."""
    raw_query = environ.get("QUERY_STRING", "")
    if "X-Amz-Signature=" not in raw_query:
        return None
    query = parse_qsl(raw_query, keep_blank_values=True)
    params = dict(query)
    try:
        key_id, date, region, service, _ = params["X-Amz-Credential"].split("/")
        stamp = datetime.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
        expires = int(params["X-Amz-Expires"])
        signed_headers = params["X-Amz-SignedHeaders"]
        signature = params["X-Amz-Signature"]
    except (KeyError, ValueError):
        return ("AuthorizationQueryParametersError", "Query-string authentication requires X-Amz-Credential, X-Amz-Date, X-Amz-Expires, X-Amz-SignedHeaders and X-Amz-Signature.")
    if key_id != os.environ.get("AWS_ACCESS_KEY_ID", "testing"):
        return ("InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
    if (now or datetime.now(timezone.utc)) > stamp + timedelta(seconds=expires):
        return ("AccessDenied", "Request has expired")

    def enc(text):
        return quote(text, safe="-_.~")

    path = environ.get("RAW_URI") or environ.get("REQUEST_URI") or quote(environ.get("PATH_INFO", "/"))
    path = path.split("?", 1)[0]
    canonical_query = "&".join(
        f"{enc(k)}={enc(v)}" for k, v in sorted(query) if k != "X-Amz-Signature"
    )
    names = signed_headers.split(";")
    canonical_headers = "".join(f"{n}:{' '.join(_header(environ, n).split())}\n" for n in names)
    canonical = "\n".join(
        [environ["REQUEST_METHOD"], path, canonical_query, canonical_headers, signed_headers, "UNSIGNED-PAYLOAD"]
    )
    scope = f"{date}/{region}/{service}/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", params["X-Amz-Date"], scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    secret = os.environ.get("AWS_SECRET_ACCESS_KEY", "testing")
    expected = hmac.new(_sigv4_key(secret, date, region, service), to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        return ("SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided.")
    return None


class PresignedS3:
    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        refusal = presigned_refusal(environ)
        if refusal is None:
            return self.app(environ, start_response)
        code, message = refusal
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
        ).encode()
        start_response("403 Forbidden", [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
        return [body]


_run_simple = moto.server.run_simple


def _run_serial(host, port, app, **kwargs):
    _run_simple(host, port, PresignedS3(SerialDynamoDB(app)), **kwargs)


moto.server.run_simple = _run_serial

if __name__ == "__main__":
    moto.server.main()
