"""Prints the JSON stream of an eofaas.v1.Invoker/Map call (as buf curl writes it): every item's
cursor, replica and result, and the sum of the results' "lines".

Usage: print_map.py [--expect-lines N] < stream
Exits 1 when an item failed, the stream ended without its done event, or the sum is not N.
"""

import argparse
import base64
import json
import sys


def events(text):
    decoder = json.JSONDecoder()
    position = 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position == len(text):
            return
        event, position = decoder.raw_decode(text, position)
        yield event


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--expect-lines", type=int)
    args = parser.parse_args()
    total, failed, done = 0, 0, False
    for event in events(sys.stdin.read()):
        if "planned" in event:
            planned = event["planned"]
            print(f"planned: {planned.get('items', 0)} cursors, {planned.get('bytes', 0)} bytes")
        elif "items" in event:
            # Items that completed together share an event.
            for item in event["items"].get("items", []):
                cursor = item["cursor"]
                name = cursor["uri"].rsplit("/", 1)[-1]
                span = f"[{cursor.get('offset', '0')}, +{cursor.get('length', '0')})"
                if "result" in item:
                    result = base64.b64decode(item["result"]).decode()
                    total += json.loads(result).get("lines", 0)
                else:
                    failed += 1
                    result = json.dumps(item.get("error") or item.get("failure"))
                index = item.get("index", "0")
                print(f"  #{index:>2} {name} {span} via {item.get('replica', '-')}: {result}")
        elif "done" in event:
            done = True
            print(f"done: {json.dumps(event['done'])}")
    expected = "" if args.expect_lines is None else f" (wc -l: {args.expect_lines})"
    print(f"total lines: {total}{expected}")
    if not done:
        sys.exit("the Map ended without its done event")
    if failed:
        sys.exit(f"{failed} items failed")
    if args.expect_lines is not None and total != args.expect_lines:
        sys.exit(f"the total is not wc -l's {args.expect_lines}")


if __name__ == "__main__":
    main()
