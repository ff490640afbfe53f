<?php

/**
 * Helpers shared by the supervisor and its workers: logging, the error body of the replica
 * protocol and the frames that carry invocations between the two over a socket pair.
 *
 * A frame is an 8-byte big-endian length followed by that many bytes of payload.
 */

declare(strict_types=1);

namespace Eofaas;

const LOG_PREFIX = 'eofaas php8 runtime';

/** Request bodies carry a cursor and args, never data; anything bigger is a client bug. */
const MAX_BODY_BYTES = 16 * 1024 * 1024;

const FUNCTION_ERROR_HEADER = 'X-Eofaas-Function-Error';

/** Writes one line to stderr in a single write, so lines of several processes never interleave. */
function log(string $message, string $separator = ': '): void
{
    fwrite(STDERR, LOG_PREFIX . $separator . $message . "\n");
}

/** The JSON body of every error answer: {"error": {"type", "message", ...extra}}. */
function errorBody(string $type, string $message, array $extra = []): string
{
    $error = ['type' => $type, 'message' => $message] + $extra;
    return json_encode(
        ['error' => $error],
        JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_INVALID_UTF8_SUBSTITUTE,
    );
}

/** The class name without its namespace, as callers see a function error's type. */
function shortClassName(object $object): string
{
    $name = get_class($object);
    $separator = strrpos($name, '\\');
    return $separator === false ? $name : substr($name, $separator + 1);
}

/** The message of the last PHP warning without its "function(): " prefix. */
function lastErrorReason(string $fallback): string
{
    $message = error_get_last()['message'] ?? '';
    if ($message === '') {
        return $fallback;
    }
    $colon = strpos($message, '): ');
    return $colon === false ? $message : substr($message, $colon + 3);
}

/** Framing of the messages exchanged by the supervisor and a worker. */
final class Frame
{
    public static function encode(string $payload): string
    {
        return pack('J', strlen($payload)) . $payload;
    }

    /** Removes the first complete frame from $buffer and returns its payload; null if incomplete. */
    public static function take(string &$buffer): ?string
    {
        if (strlen($buffer) < 8) {
            return null;
        }
        $length = unpack('J', $buffer)[1];
        if (strlen($buffer) < 8 + $length) {
            return null;
        }
        $payload = substr($buffer, 8, $length);
        $buffer = substr($buffer, 8 + $length);
        return $payload;
    }
}

/** Frame kinds a worker sends (the first byte of the payload). */
final class WorkerMessage
{
    /** The handler is loaded; the worker waits for invocations. */
    public const LOADED = 'L';
    /** The handler failed to load; the rest of the payload is the error. */
    public const LOAD_FAILED = 'E';
    /** An invocation's answer: pack('nN', status, strlen(headers)) . headers . body. */
    public const RESPONSE = 'R';
    /** Like RESPONSE, but the worker exits right after it (exit() or a fatal error). */
    public const LAST_RESPONSE = 'X';
}
