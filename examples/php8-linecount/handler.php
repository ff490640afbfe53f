<?php

/**
 * Example php8 function: counts the lines of its chunk.
 *
 * args (optional): {"contains": "T32TQM"} counts only the lines containing that text.
 * Returns {"lines": n, "bytes": chunk size, "part": cursor part}; summing "lines" and "bytes" over
 * all chunks of a LINES-framed data set gives its line count and total size.
 */

declare(strict_types=1);

function handle(Data $data, Context $ctx): array
{
    $contains = $ctx->args->contains ?? null;
    if ($contains !== null && !is_string($contains)) {
        throw new FunctionError('args.contains must be a string');
    }
    $lines = 0;
    foreach ($data as $line) { // streamed: a chunk of any size is never held in memory at once
        if ($contains === null || $contains === '' || str_contains($line, $contains)) {
            $lines++;
        }
    }
    return ['lines' => $lines, 'bytes' => $data->tell(), 'part' => $data->cursor?->part];
}
