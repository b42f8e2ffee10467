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

Usage: python local_aws_server.py -H 127.0.0.1 -p PORT
"""

import copy
import threading

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

_run_simple = moto.server.run_simple


def _run_serial(host, port, app, **kwargs):
    _run_simple(host, port, SerialDynamoDB(app), **kwargs)


moto.server.run_simple = _run_serial

if __name__ == "__main__":
    moto.server.main()
