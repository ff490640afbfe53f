<?php

/**
 * Public API of the php8 template for function authors.
 *
 * A function is `function/handler.php` defining `function handle(Data $data, Context $ctx)` in the
 * global namespace:
 *   - `$data` is the chunk the cursor points at: `$data->read()` returns its bytes,
 *     `foreach ($data as $line)` (or `$data->lines()`) streams its lines without the trailing
 *     newline, `$data->cursor` describes it;
 *   - `$ctx` carries the invocation: `args`, `id`, `attempt`, `deadlineMs`, `remainingMs()`,
 *     `function`, `cursor`. `args` is the JSON object as json_decode() gives it: objects are
 *     stdClass, lists are arrays (`$ctx->args->bands[0]`, `$ctx->args->threshold ?? 0.5`), so
 *     that returning it, or any part of it, answers the same JSON: `{}` and `{"0": ...}` stay
 *     objects. `(array) $ctx->args` or get_object_vars() give its top level as an array.
 * The return value becomes the response: a string as is (PHP strings are bytes), null as an empty
 * body, anything else as JSON. Throw `FunctionError` for an expected failure ("handled"); any other
 * exception or error, PHP warnings and notices included, is reported as "unhandled". Either way the
 * caller sees a function error, which is never retried.
 */

declare(strict_types=1);

/**
 * An error the function reports on purpose, e.g. malformed input data.
 *
 * Subclass it to give the error a type name: the caller sees the class name and the message.
 */
class FunctionError extends Exception
{
}

/** The chunk could not be read: a missing file, an HTTP error status, a timeout. */
class StorageError extends RuntimeException
{
    /** @param int $code the HTTP status for an HTTP error, 0 otherwise */
    public function __construct(string $message, int $code = 0)
    {
        parent::__construct($message, $code);
    }
}

/** The object is no longer the version the cursor's etag names. */
final class ObjectChangedError extends StorageError
{
}

/** A validated data cursor (eofaas.v1.DataCursor). */
final class Cursor
{
    /**
     * @param string $framing "NONE" or "LINES"
     * @param ?int $length null: to the end of the object
     */
    public function __construct(
        public readonly string $uri,
        public readonly int $offset = 0,
        public readonly ?int $length = null,
        public readonly string $framing = 'NONE',
        public readonly int $part = 0,
        public readonly int $parts = 0,
        public readonly int $size = 0,
        public readonly string $etag = '',
    ) {
    }

    /** Exclusive end of the owned range, or null when it runs to the end of the object. */
    public function end(): ?int
    {
        if ($this->length === null) {
            return null;
        }
        // Past PHP_INT_MAX the sum would turn into a float; no object is that large.
        return $this->length > PHP_INT_MAX - $this->offset
            ? PHP_INT_MAX
            : $this->offset + $this->length;
    }
}

/** What a handler knows about its invocation; built by the runtime once per request. */
final class Context
{
    /**
     * @param ?int $deadlineMs budget left when the caller sent the request; null without deadline
     * @param int $arrivedNs hrtime(true) when the request arrived
     */
    public function __construct(
        public readonly string $id,
        public readonly stdClass $args,
        public readonly int $attempt,
        public readonly ?int $deadlineMs,
        public readonly string $function,
        public readonly ?Cursor $cursor,
        private readonly int $arrivedNs,
    ) {
    }

    /** Milliseconds left before the caller gives up (never below 0); null without a deadline. */
    public function remainingMs(): ?int
    {
        if ($this->deadlineMs === null) {
            return null;
        }
        // Whole milliseconds left, rounded down as in the other templates: the time spent is
        // rounded up.
        $elapsedMs = intdiv(hrtime(true) - $this->arrivedNs + 999_999, 1_000_000);
        return max(0, $this->deadlineMs - $elapsedMs);
    }
}

/**
 * The chunk a cursor points at, read lazily, once, front to back like a file.
 *
 * Storage errors (missing file, HTTP error) are thrown as StorageError from the first read, i.e.
 * inside the handler. `read()` returns the rest of the chunk; iteration yields its lines without
 * "\n" in constant memory (apart from the longest line). Both take from one buffer held here, so
 * read(), iteration and tell() carry on from one another, wherever a handler leaves an iteration.
 * A null cursor is an empty chunk. close() releases the underlying file or connection; the
 * runtime calls it after the handler.
 *
 * @implements IteratorAggregate<int, string>
 */
final class Data implements IteratorAggregate
{
    private ?Eofaas\Blocks $blocks = null;
    /** Bytes taken from $blocks; those from $start on are not returned yet. */
    private string $buffer = '';
    /** An index into $buffer, so that handing out a line copies the line only. */
    private int $start = 0;
    /** Bytes taken from $blocks so far. */
    private int $taken = 0;

    /**
     * @param float $timeout seconds per blocking network operation
     * @param int $blockSize read granularity
     */
    public function __construct(
        public readonly ?Cursor $cursor,
        private readonly float $timeout = 60.0,
        private readonly int $blockSize = Eofaas\BLOCK_SIZE,
    ) {
    }

    /**
     * Bytes of the chunk consumed so far, by read() or as lines (with their "\n"); the chunk's
     * size once it has been read or iterated to the end.
     */
    public function tell(): int
    {
        return $this->taken - (strlen($this->buffer) - $this->start);
    }

    /** Returns up to $size bytes; all remaining bytes when $size is null or negative. */
    public function read(?int $size = null): string
    {
        if ($size === null || $size < 0) {
            $parts = [$this->takeBuffer()];
            while (($block = $this->nextBlock()) !== '') {
                $parts[] = $block;
            }
            return implode('', $parts);
        }
        if (strlen($this->buffer) - $this->start < $size) {
            $parts = [$this->takeBuffer()];
            $have = strlen($parts[0]);
            while ($have < $size && ($block = $this->nextBlock()) !== '') {
                $parts[] = $block;
                $have += strlen($block);
            }
            $this->buffer = implode('', $parts);
        }
        $result = substr($this->buffer, $this->start, $size);
        $this->start += strlen($result);
        return $result;
    }

    /**
     * Yields the remaining lines without their "\n" ("\r" of CRLF is kept). A line is consumed
     * when it is yielded: read(), tell() or another iteration go on after it.
     *
     * @return Generator<int, string>
     */
    public function lines(): Generator
    {
        while (true) {
            $start = $this->start;
            $newline = strpos($this->buffer, "\n", $start);
            if ($newline !== false) {
                $this->start = $newline + 1;
                yield substr($this->buffer, $start, $newline - $start);
            } elseif (!$this->bufferLine()) {
                $last = $this->takeBuffer(); // the chunk ends without a "\n"
                if ($last !== '') {
                    yield $last;
                }
                return;
            }
        }
    }

    /** @return Generator<int, string> */
    public function getIterator(): Generator
    {
        return $this->lines();
    }

    public function close(): void
    {
        $this->blocks?->close();
    }

    private function nextBlock(): string
    {
        $this->blocks ??= new Eofaas\Blocks(
            Eofaas\chunkBlocks($this->cursor, $this->timeout, $this->blockSize),
        );
        $block = $this->blocks->next();
        $this->taken += strlen($block);
        return $block;
    }

    /** Empties the buffer and returns what it held that was not returned yet. */
    private function takeBuffer(): string
    {
        $rest = substr($this->buffer, $this->start);
        $this->buffer = '';
        $this->start = 0;
        return $rest;
    }

    /**
     * Reads blocks into the buffer until it holds a "\n" not returned yet; false when the chunk
     * ends first.
     */
    private function bufferLine(): bool
    {
        $parts = [$this->takeBuffer()];
        do {
            $block = $this->nextBlock();
            $parts[] = $block;
        } while ($block !== '' && !str_contains($block, "\n"));
        $this->buffer = implode('', $parts);
        return $block !== '';
    }
}
