<?php

/**
 * Cursor parsing and chunk reading for the php8 template.
 *
 * A cursor (the proto3 JSON form of eofaas.v1.DataCursor) names a byte range of an object in the
 * data store. parseCursor() validates it; chunkBlocks() reads it with the cursor's framing:
 *   NONE   bytes [offset, offset+length), clamped at the end of the object (no length: to the end);
 *   LINES  every line that *starts* inside [offset, offset+length), each whole with its newline.
 *          A line starts at byte 0 or right after "\n". Reading from offset-1 and dropping bytes
 *          up to and including the first "\n" skips the line the previous chunk owns; reading on
 *          past the range until the last owned line ends completes ours. Over all chunks of an
 *          object every line comes out exactly once, whatever the chunk size.
 * Objects are `file:///abs/path` or `http(s)://...` (read with a Range request through PHP's
 * stream wrappers, so no extension beyond the standard build is needed). A cursor's `etag`, when
 * set, is the version of the object it was made for: a file's must still be the planner's
 * "<mtime ns>-<size>" (hexadecimal; PHP sees the mtime to the second), and a store is sent a strong
 * (quoted) one as If-Match. An object that changed since throws ObjectChangedError rather than mix
 * two versions into one Map.
 */

declare(strict_types=1);

namespace Eofaas;

use Cursor;
use Generator;
use ObjectChangedError;
use StorageError;

/**
 * Read granularity: large enough for throughput, small enough that iterating a huge chunk stays
 * streaming rather than loading it.
 */
const BLOCK_SIZE = 256 * 1024;

/** A request field is malformed; $field names it (e.g. "cursor.offset"). */
final class FieldError extends \InvalidArgumentException
{
    public function __construct(public readonly string $field, public readonly string $detail)
    {
        parent::__construct("{$field}: {$detail}");
    }
}

/**
 * Parses a proto3 JSON int64, which arrives as a JSON number or a decimal string.
 *
 * @throws FieldError
 */
function parseInt(
    mixed $value,
    string $field,
    ?int $default = null,
    int $minimum = PHP_INT_MIN,
): ?int {
    if ($value === null) {
        return $default;
    }
    if (is_int($value)) {
        $number = $value;
    } elseif (is_float($value) && is_finite($value) && floor($value) === $value) {
        // 2^63 is the first float past PHP_INT_MAX; casting it would wrap.
        if ($value >= 9.2233720368547758E18 || $value < -9.2233720368547758E18) {
            throw new FieldError($field, 'out of range: ' . json_encode($value));
        }
        $number = (int) $value;
    } elseif (is_string($value) && preg_match('/^(-?)0*([0-9]+)$/D', $value, $match)) {
        // Compare the digits as text: (int) would saturate out-of-range values silently.
        $limit = $match[1] === '-' ? '9223372036854775808' : '9223372036854775807';
        $digits = $match[2];
        if (strlen($digits) > 19 || (strlen($digits) === 19 && strcmp($digits, $limit) > 0)) {
            throw new FieldError($field, "out of range: {$value}");
        }
        $number = (int) ($match[1] . $digits);
    } else {
        throw new FieldError($field, 'must be an integer, got ' . describe($value));
    }
    if ($number < $minimum) {
        throw new FieldError($field, "out of range: {$number}");
    }
    return $number;
}

/** A short JSON-like rendering of a request value for error messages. */
function describe(mixed $value): string
{
    $json = json_encode($value, JSON_UNESCAPED_SLASHES | JSON_INVALID_UTF8_SUBSTITUTE);
    return $json === false ? get_debug_type($value) : $json;
}

/** proto3 JSON spells enums by name; numbers are legal too. UNSPECIFIED reads as raw bytes. */
const FRAMINGS = [
    'FRAMING_UNSPECIFIED' => 'NONE',
    'FRAMING_NONE' => 'NONE',
    'NONE' => 'NONE',
    'FRAMING_LINES' => 'LINES',
    'LINES' => 'LINES',
];
const FRAMING_NUMBERS = [0 => 'NONE', 1 => 'NONE', 2 => 'LINES'];

/**
 * Builds a Cursor from its decoded JSON object (stdClass or associative array).
 *
 * @throws FieldError naming the bad field
 */
function parseCursor(mixed $object): Cursor
{
    if ($object instanceof \stdClass) {
        $object = (array) $object;
    } elseif (!is_array($object) || array_is_list($object)) {
        throw new FieldError('cursor', 'must be a JSON object');
    }
    $uri = $object['uri'] ?? null;
    if (!is_string($uri) || $uri === '') {
        throw new FieldError('cursor.uri', 'is required');
    }
    checkUri($uri);
    $framing = $object['framing'] ?? null;
    if ($framing === null) {
        $framing = 'NONE';
    } elseif (is_string($framing) && isset(FRAMINGS[strtoupper($framing)])) {
        $framing = FRAMINGS[strtoupper($framing)];
    } elseif (is_int($framing) && isset(FRAMING_NUMBERS[$framing])) {
        $framing = FRAMING_NUMBERS[$framing];
    } else {
        throw new FieldError('cursor.framing', 'unknown framing ' . describe($framing));
    }
    $etag = $object['etag'] ?? null;
    if ($etag !== null && !is_string($etag)) {
        throw new FieldError('cursor.etag', 'must be a string');
    }
    return new Cursor(
        uri: $uri,
        offset: parseInt($object['offset'] ?? null, 'cursor.offset', 0, 0),
        length: parseInt($object['length'] ?? null, 'cursor.length', null, 0),
        framing: $framing,
        part: parseInt($object['part'] ?? null, 'cursor.part', 0),
        parts: parseInt($object['parts'] ?? null, 'cursor.parts', 0),
        size: parseInt($object['size'] ?? null, 'cursor.size', 0),
        etag: $etag ?? '',
    );
}

/** @throws FieldError */
function checkUri(string $uri): void
{
    $parts = parse_url($uri);
    $scheme = strtolower($parts['scheme'] ?? '');
    if (!in_array($scheme, ['file', 'http', 'https'], true)) {
        if ($parts === false && preg_match('#^https?:#i', $uri)) {
            throw new FieldError('cursor.uri', "missing host: '{$uri}'");
        }
        throw new FieldError('cursor.uri', "scheme must be one of file, http, https: '{$uri}'");
    }
    if ($scheme === 'file') {
        $local = in_array($parts['host'] ?? '', ['', 'localhost'], true);
        if (!$local || !str_starts_with($parts['path'] ?? '', '/')) {
            throw new FieldError('cursor.uri', "file URI must be file:///absolute/path: '{$uri}'");
        }
    } elseif (($parts['host'] ?? '') === '') {
        throw new FieldError('cursor.uri', "missing host: '{$uri}'");
    }
}

/**
 * Steps through a generator of byte blocks: next() returns the next block, '' at the end.
 *
 * close() drops the generator, which runs its `finally` blocks and so closes the file or
 * connection behind it.
 */
final class Blocks
{
    private bool $started = false;

    /** @param Generator<mixed, string> $generator */
    public function __construct(private ?Generator $generator)
    {
    }

    public function next(): string
    {
        if ($this->generator === null) {
            return '';
        }
        if ($this->started) {
            $this->generator->next();
        }
        $this->started = true;
        if ($this->generator->valid()) {
            return $this->generator->current();
        }
        $this->generator = null;
        return '';
    }

    public function close(): void
    {
        $this->generator = null;
    }
}

/**
 * Yields the chunk's bytes in blocks, framed as the cursor says.
 *
 * @return Generator<mixed, string>
 */
function chunkBlocks(?Cursor $cursor, float $timeout, int $blockSize): Generator
{
    if ($cursor === null) {
        return;
    }
    if ($cursor->framing === 'LINES') {
        $start = max(0, $cursor->offset - 1);
        $blocks = new Blocks(objectBlocks($cursor, $start, null, $timeout, $blockSize));
        yield from ownedLines($blocks, $cursor->offset, $cursor->end());
        return;
    }
    yield from objectBlocks($cursor, $cursor->offset, $cursor->length, $timeout, $blockSize);
}

/**
 * Keeps the lines starting in [offset, end) from $blocks, which begin at max(offset-1, 0).
 *
 * @return Generator<int, string>
 */
function ownedLines(Blocks $blocks, int $offset, ?int $end): Generator
{
    try {
        $pos = max(0, $offset - 1); // object position of the first byte of $block
        $block = '';
        if ($offset > 0) {
            // The line running through byte offset-1 belongs to the previous chunk; if that byte
            // is "\n" it ends there and ours start right at offset.
            while (true) {
                $block = $blocks->next();
                if ($block === '') {
                    return; // no line starts at or after offset
                }
                $newline = strpos($block, "\n");
                if ($newline !== false) {
                    $pos += $newline + 1;
                    $block = substr($block, $newline + 1);
                    break;
                }
                $pos += strlen($block);
            }
        }
        if ($end !== null && $pos >= $end) {
            return; // the first line starting here lies beyond the chunk
        }
        while (true) {
            if ($block !== '') {
                if ($end !== null) {
                    // The last owned line is the one holding byte end-1: stop at the "\n" that
                    // ends it.
                    $from = max(0, $end - 1 - $pos);
                    $newline = $from < strlen($block) ? strpos($block, "\n", $from) : false;
                    if ($newline !== false) {
                        yield substr($block, 0, $newline + 1);
                        return;
                    }
                }
                yield $block;
                $pos += strlen($block);
            }
            $block = $blocks->next();
            if ($block === '') {
                return;
            }
        }
    } finally {
        $blocks->close();
    }
}

/**
 * Yields the object's bytes from $start, at most $length of them (null: to the end).
 *
 * @return Generator<int, string>
 */
function objectBlocks(
    Cursor $cursor,
    int $start,
    ?int $length,
    float $timeout,
    int $blockSize,
): Generator {
    // Opened even for no bytes: a missing or changed object is an error whatever the length.
    $source = str_starts_with(strtolower($cursor->uri), 'file:')
        ? FileSource::open($cursor->uri, $cursor->etag, $start)
        : HttpSource::open($cursor->uri, $cursor->etag, $start, $length, $timeout);
    try {
        $remaining = $length;
        while ($remaining === null || $remaining > 0) {
            $block = $source->read($remaining === null ? $blockSize : min($blockSize, $remaining));
            if ($block === '') {
                return;
            }
            if ($remaining !== null) {
                $remaining -= strlen($block);
            }
            yield $block;
        }
    } finally {
        $source->close();
    }
}

/** An object opened at some position; read() returns '' at its end and throws StorageError. */
interface Source
{
    public function read(int $size): string;

    public function close(): void;
}

final class FileSource implements Source
{
    /** @param resource $file */
    private function __construct(private mixed $file, private readonly string $uri)
    {
    }

    public static function open(string $uri, string $etag, int $start): self
    {
        $path = rawurldecode((string) parse_url($uri, PHP_URL_PATH));
        error_clear_last();
        $file = @fopen($path, 'rb');
        if ($file === false) {
            throw new StorageError("cannot open {$uri}: " . lastErrorReason('cannot open'));
        }
        if ($etag !== '' && !self::isVersion($file, $etag)) {
            fclose($file);
            throw new ObjectChangedError("{$uri} changed since the cursor was made (etag {$etag})");
        }
        if ($start > 0 && fseek($file, $start) !== 0) {
            fclose($file);
            throw new StorageError("cannot seek to {$start} in {$uri}");
        }
        return new self($file, $uri);
    }

    /**
     * Whether the open file is the version $etag names ("<mtime ns>-<size>" in hexadecimal): its
     * size, and its mtime to the second, which is all PHP's fstat gives.
     *
     * @param resource $file
     */
    private static function isVersion(mixed $file, string $etag): bool
    {
        // The mtime is signed: "-" before 1970.
        if (!preg_match('/^(-?)([0-9a-f]{1,16})-([0-9a-f]{1,16})$/D', $etag, $match)) {
            return false;
        }
        [$mtimeNs, $size] = [hexdec($match[2]), hexdec($match[3])]; // floats beyond PHP_INT_MAX
        if (!is_int($mtimeNs) || !is_int($size)) {
            return false;
        }
        // fstat's seconds are the mtime rounded down, also before 1970.
        $seconds = intdiv($mtimeNs, 1_000_000_000);
        if ($match[1] === '-') {
            $seconds = -$seconds - ($mtimeNs % 1_000_000_000 === 0 ? 0 : 1);
        }
        $status = fstat($file);
        return $status !== false && $seconds === $status['mtime'] && $size === $status['size'];
    }

    public function read(int $size): string
    {
        error_clear_last();
        $block = @fread($this->file, $size);
        if ($block === false) {
            throw new StorageError("cannot read {$this->uri}: " . lastErrorReason('read failed'));
        }
        return $block;
    }

    public function close(): void
    {
        fclose($this->file);
    }
}

/**
 * An HTTP(S) object read with `Range: bytes=start-[last]`. A 206 must start at $start; a server
 * that ignores Range answers 200 with the whole object and the bytes before $start are skipped;
 * 416 (the range starts at or past the end) is an empty object. A body shorter than its
 * Content-Length is an error rather than a silently short chunk.
 */
final class HttpSource implements Source
{
    /** Body bytes received so far, skipped ones included. */
    private int $received = 0;

    /**
     * @param ?resource $stream null for an empty object
     * @param ?int $expected the body's Content-Length, when the server sent one
     */
    private function __construct(
        private mixed $stream,
        private readonly string $uri,
        private readonly ?int $expected,
        private readonly float $timeout,
    ) {
    }

    public static function open(
        string $uri,
        string $etag,
        int $start,
        ?int $length,
        float $timeout,
    ): self {
        // A length of 0 reads nothing, but "bytes=5-4" is no range: ask for the rest instead.
        $last = $length ? (string) ($start + $length - 1) : '';
        $headers = "Range: bytes={$start}-{$last}";
        if (preg_match('/^"[\x21\x23-\x7e]*"$/D', $etag)) { // a weak etag never matches If-Match
            $headers .= "\r\nIf-Match: {$etag}";
        }
        $context = stream_context_create(['http' => [
            'method' => 'GET',
            'protocol_version' => 1.1, // the wrapper sends "Connection: close" and decodes chunked
            'header' => $headers,
            'user_agent' => 'eofaas-php8',
            'ignore_errors' => true, // error statuses are checked below, with their code
            'timeout' => $timeout,
        ]]);
        error_clear_last();
        $stream = @fopen($uri, 'rb', false, $context);
        if ($stream === false) {
            throw new StorageError("GET {$uri}: " . lastErrorReason('request failed'));
        }
        $meta = stream_get_meta_data($stream);
        [$status, $reason, $headers] = self::parseHead($meta['wrapper_data'] ?? []);
        if ($status === 416) {
            fclose($stream);
            return new self(null, $uri, null, $timeout);
        }
        if ($status === 412) {
            fclose($stream);
            throw new ObjectChangedError(
                "GET {$uri}: the object changed since the cursor was made (If-Match {$etag}: 412)",
                $status,
            );
        }
        if ($status < 200 || $status >= 300) {
            fclose($stream);
            throw new StorageError(trim("GET {$uri}: HTTP {$status} {$reason}"), $status);
        }
        $expected = preg_match('/^[0-9]{1,18}$/D', $headers['content-length'] ?? '')
            ? (int) $headers['content-length'] : null;
        $source = new self($stream, $uri, $expected, $timeout);
        if ($status === 206) {
            $range = $headers['content-range'] ?? '';
            $matched = preg_match('#^bytes\s+(\d+)-\d+/(\d+|\*)$#i', $range, $match);
            if (!$matched || (int) $match[1] !== $start) {
                $source->close();
                throw new StorageError(
                    "GET {$uri}: unexpected Content-Range '{$range}' for bytes={$start}-",
                );
            }
        } else {
            // The server ignored the Range header and sends the whole object: skip to $start.
            $source->skip($start);
        }
        return $source;
    }

    public function read(int $size): string
    {
        if ($this->stream === null) {
            return '';
        }
        $block = @fread($this->stream, $size);
        if ($block === false || $block === '') {
            if (stream_get_meta_data($this->stream)['timed_out']) {
                throw new StorageError("GET {$this->uri}: no data for {$this->timeout} s");
            }
            if ($this->expected !== null && $this->received < $this->expected) {
                throw new StorageError(
                    "GET {$this->uri}: connection closed after {$this->received} of "
                    . "{$this->expected} bytes",
                );
            }
            return '';
        }
        $this->received += strlen($block);
        return $block;
    }

    public function close(): void
    {
        if ($this->stream !== null) {
            fclose($this->stream);
            $this->stream = null;
        }
    }

    private function skip(int $bytes): void
    {
        while ($bytes > 0) {
            $skipped = strlen($this->read(min(BLOCK_SIZE, $bytes)));
            if ($skipped === 0) {
                break;
            }
            $bytes -= $skipped;
        }
    }

    /**
     * The status, reason and lower-cased headers of the last response in the wrapper's header
     * lines (earlier ones belong to redirects).
     *
     * @param list<string> $lines
     * @return array{int, string, array<string, string>}
     */
    private static function parseHead(array $lines): array
    {
        $status = 0;
        $reason = '';
        $headers = [];
        foreach ($lines as $line) {
            if (preg_match('#^HTTP/\S+\s+(\d{3})\s*(.*)$#', $line, $match)) {
                [$status, $reason, $headers] = [(int) $match[1], $match[2], []];
            } elseif (($colon = strpos($line, ':')) !== false) {
                $name = strtolower(trim(substr($line, 0, $colon)));
                $headers[$name] = trim(substr($line, $colon + 1));
            }
        }
        return [$status, $reason, $headers];
    }
}
