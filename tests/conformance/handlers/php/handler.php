<?php

/**
 * Fixture handler of the conformance suite (php8).
 *
 * Each test vector names a behaviour in args->behaviour (default "echo-envelope"); the python
 * and node fixtures implement the same behaviours and must answer byte for byte the same.
 */

declare(strict_types=1);

// Lets a vector observe /healthz while the handler is still loading.
usleep(1000 * (int) (getenv('CONFORMANCE_LOAD_DELAY_MS') ?: 0));

/** A handled function error with a type name of its own. */
class BadScene extends FunctionError
{
}

/** An unhandled function error with a type name of its own. */
class CloudCoverMissing extends Exception
{
}

function cursorFields(?Cursor $cursor): ?array
{
    if ($cursor === null) {
        return null;
    }
    return [
        'uri' => $cursor->uri,
        'offset' => $cursor->offset,
        'length' => $cursor->length,
        'framing' => $cursor->framing,
        'part' => $cursor->part,
        'parts' => $cursor->parts,
        'size' => $cursor->size,
        'etag' => $cursor->etag,
    ];
}

function echoEnvelope(Data $data, Context $ctx): array
{
    $keys = array_map('strval', array_keys(get_object_vars($ctx->args)));
    sort($keys, SORT_STRING);
    return [
        'id' => $ctx->id,
        'args' => $ctx->args,
        'arg_keys' => $keys,
        'attempt' => $ctx->attempt,
        'deadline_ms' => $ctx->deadlineMs,
        'remaining_ms' => $ctx->remainingMs(),
        'function' => $ctx->function,
        'cursor' => cursorFields($ctx->cursor),
    ];
}

function readPieces(Data $data, Context $ctx): string
{
    $size = (int) $ctx->args->size;
    $pieces = [];
    while (($piece = $data->read($size)) !== '') {
        if (strlen($piece) > $size) {
            throw new LengthException("read({$size}) returned " . strlen($piece) . ' bytes');
        }
        $pieces[] = $piece;
    }
    return implode('', $pieces);
}

function lines(Data $data): string
{
    $out = [];
    foreach ($data as $line) {
        $out[] = $line . "\n";
    }
    return implode('', $out);
}

/** @return list<string|int|null> */
function steps(Data $data, Context $ctx): array
{
    $out = [];
    foreach ($ctx->args->steps as $step) {
        $out[] = match ($step[0]) {
            'read' => $data->read($step[1] ?? null),
            'line' => $data->lines()->current(),
            default => $data->tell(),
        };
    }
    return $out;
}

function binaryResult(Context $ctx): string
{
    $all = '';
    for ($byte = 0; $byte < 256; $byte++) {
        $all .= chr($byte);
    }
    return str_repeat($all, (int) ($ctx->args->repeat ?? 1));
}

function remainingTime(Context $ctx): array
{
    $before = $ctx->remainingMs();
    usleep(1000 * (int) ($ctx->args->sleep_ms ?? 0));
    return ['deadline_ms' => $ctx->deadlineMs, 'before' => $before, 'after' => $ctx->remainingMs()];
}

/** Signals that it runs, then waits until the runner lets it finish. */
function block(Context $ctx): string
{
    $dir = $ctx->args->dir;
    touch("{$dir}/entered-{$ctx->id}");
    $giveUp = hrtime(true) + 1_000_000 * (int) ($ctx->args->timeout_ms ?? 10000);
    while (!file_exists("{$dir}/release")) {
        if (hrtime(true) > $giveUp) {
            throw new RuntimeException('never released');
        }
        usleep(2000);
        clearstatcache();
    }
    return 'released';
}

function handle(Data $data, Context $ctx): mixed
{
    $args = $ctx->args;
    return match ($args->behaviour ?? 'echo-envelope') {
        'echo-envelope' => echoEnvelope($data, $ctx),
        'echo-args' => $args,
        'read-all' => $data->read(),
        'read-pieces' => readPieces($data, $ctx),
        'lines' => lines($data),
        'steps' => steps($data, $ctx),
        'binary-result' => binaryResult($ctx),
        'binary-echo' => base64_decode($args->base64, true),
        'text-result' => $args->text,
        'json-result' => ['value' => $args->value],
        'none-result' => null,
        'remaining-time' => remainingTime($ctx),
        'block' => block($ctx),
        'raise-handled' => throw new BadScene($args->message),
        'raise-unhandled' => throw new CloudCoverMissing($args->message),
        'raise-builtin' => throw new RuntimeException($args->message),
        'sleep' => (function () use ($args): string {
            usleep(1000 * (int) $args->ms);
            return 'slept';
        })(),
    };
}
