<?php

/**
 * HTTP/1.1 server side of one client connection, parsed incrementally from a non-blocking socket:
 * request line and headers (bounded), then a Content-Length or chunked body (bounded), keep-alive
 * and pipelining. The supervisor feeds bytes in and takes complete requests out.
 */

declare(strict_types=1);

namespace Eofaas;

/** Bound on the request line plus headers. */
const MAX_HEAD_BYTES = 64 * 1024;

const REASONS = [
    100 => 'Continue',
    200 => 'OK',
    400 => 'Bad Request',
    404 => 'Not Found',
    405 => 'Method Not Allowed',
    413 => 'Content Too Large',
    429 => 'Too Many Requests',
    431 => 'Request Header Fields Too Large',
    503 => 'Service Unavailable',
    505 => 'HTTP Version Not Supported',
];

/** A request the connection cannot go on from; it is answered, then the connection is closed. */
final class HttpError extends \Exception
{
    public function __construct(
        public readonly int $status,
        string $message,
        public readonly ?string $field = null,
    ) {
        parent::__construct($message);
    }
}

/** A complete request. */
final class Request
{
    /** @param array<string, string> $headers lower-cased names */
    public function __construct(
        public readonly string $method,
        public readonly string $path,
        public readonly bool $http10,
        public readonly array $headers,
        public readonly bool $keepAlive,
        public readonly int $arrivedNs,
        public string $body = '',
    ) {
    }
}

/**
 * One client connection: its socket, unparsed input, pending output and where its current request
 * is. Owned and driven by the supervisor's loop (single-threaded).
 */
final class Connection
{
    /** Received bytes not parsed yet. */
    public string $in = '';
    /** Response bytes to write; written up to $sent. */
    public string $out = '';
    public int $sent = 0;
    /** True while an invocation of this connection is with a worker. */
    public bool $waiting = false;
    /** True while $out holds an invocation's answer: it is in flight until written. */
    public bool $answering = false;
    /** Close once $out is written. */
    public bool $closing = false;

    /** The request whose head is parsed and whose body is still arriving. */
    private ?Request $partial = null;
    private int $contentLength = 0;
    private bool $chunked = false;
    /** Chunked decoding: parse position in $in, chunk bytes still to come (-1: a size line). */
    private int $chunkPos = 0;
    private int $chunkLeft = -1;
    private bool $inTrailers = false;
    private string $chunkBody = '';

    /** @param resource $stream */
    public function __construct(public readonly mixed $stream)
    {
    }

    /**
     * Takes the next complete request from the received bytes; null when more are needed.
     * $continue is called when the client waits for "100 Continue" before sending the body.
     *
     * @throws HttpError
     */
    public function nextRequest(callable $continue): ?Request
    {
        if ($this->partial === null && !$this->parseHead($continue)) {
            return null;
        }
        $request = $this->partial;
        if ($this->chunked) {
            $body = $this->parseChunkedBody();
            if ($body === null) {
                return null;
            }
            $request->body = $body;
        } else {
            if (strlen($this->in) < $this->contentLength) {
                return null;
            }
            $request->body = (string) substr($this->in, 0, $this->contentLength);
            $this->in = (string) substr($this->in, $this->contentLength);
        }
        $this->partial = null;
        return $request;
    }

    private function parseHead(callable $continue): bool
    {
        $this->in = ltrim($this->in, "\r\n"); // stray CRLFs between requests are allowed
        $end = strpos($this->in, "\r\n\r\n");
        $bare = strpos($this->in, "\n\n");
        if ($end === false && $bare === false) {
            if (strlen($this->in) > MAX_HEAD_BYTES) {
                throw new HttpError(431, 'request head larger than ' . MAX_HEAD_BYTES . ' bytes');
            }
            return false;
        }
        $separator = 4;
        if ($bare !== false && ($end === false || $bare < $end)) {
            [$end, $separator] = [$bare, 2];
        }
        $lines = explode("\n", substr($this->in, 0, $end));
        $this->in = (string) substr($this->in, $end + $separator);
        $arrivedNs = hrtime(true); // the deadline budget counts from here

        $words = preg_split('/\s+/', trim(array_shift($lines)));
        if (count($words) !== 3 || !preg_match('#^HTTP/(\d+)\.(\d+)$#D', $words[2], $version)) {
            throw new HttpError(400, 'bad request syntax');
        }
        if ($version[1] !== '1') {
            throw new HttpError(505, "unsupported HTTP version {$words[2]}");
        }
        $headers = [];
        $name = null;
        foreach ($lines as $line) {
            $line = rtrim($line, "\r");
            if ($name !== null && in_array($line[0] ?? '', [' ', "\t"], true)) {
                $headers[$name] .= ' ' . trim($line); // obsolete line folding
                continue;
            }
            $colon = strpos($line, ':');
            if ($colon === false || $colon === 0) {
                throw new HttpError(400, 'malformed header line');
            }
            $name = strtolower(substr($line, 0, $colon));
            $headers[$name] ??= trim(substr($line, $colon + 1));
        }
        $http10 = $version[2] === '0';
        $connection = strtolower($headers['connection'] ?? '');
        $keepAlive = $connection !== 'close' && ($connection === 'keep-alive' || !$http10);

        $this->chunked = str_contains(strtolower($headers['transfer-encoding'] ?? ''), 'chunked');
        $this->contentLength = 0;
        if ($this->chunked) {
            $this->chunkPos = 0;
            $this->chunkLeft = -1;
            $this->inTrailers = false;
            $this->chunkBody = '';
        } elseif (isset($headers['content-length'])) {
            $raw = $headers['content-length'];
            if (!preg_match('/^[0-9]+$/D', $raw)) {
                $message = "Content-Length: invalid value '{$raw}'";
                throw new HttpError(400, $message, 'Content-Length');
            }
            if (strlen($raw) > 10 || (int) $raw > MAX_BODY_BYTES) {
                throw new HttpError(413, 'body: larger than ' . MAX_BODY_BYTES . ' bytes', 'body');
            }
            $this->contentLength = (int) $raw;
        }
        $this->partial = new Request(
            method: $words[0],
            path: explode('?', $words[1], 2)[0],
            http10: $http10,
            headers: $headers,
            keepAlive: $keepAlive,
            arrivedNs: $arrivedNs,
        );
        $bodyPending = $this->chunked || strlen($this->in) < $this->contentLength;
        if ($bodyPending && !$http10 && strtolower($headers['expect'] ?? '') === '100-continue') {
            $continue();
        }
        return true;
    }

    /** Decodes a chunked body as far as it has arrived; the body once complete, else null. */
    private function parseChunkedBody(): ?string
    {
        while (true) {
            if ($this->chunkLeft > 0) {
                // Chunk data followed by its CRLF.
                if (strlen($this->in) - $this->chunkPos < $this->chunkLeft) {
                    return null;
                }
                $lineEnd = strpos($this->in, "\n", $this->chunkPos + $this->chunkLeft);
                if ($lineEnd === false) {
                    $this->checkLineLength();
                    return null;
                }
                $this->chunkBody .= substr($this->in, $this->chunkPos, $this->chunkLeft);
                $this->chunkPos = $lineEnd + 1;
                $this->chunkLeft = -1;
                continue;
            }
            $lineEnd = strpos($this->in, "\n", $this->chunkPos);
            if ($lineEnd === false) {
                $this->checkLineLength();
                return null;
            }
            $line = trim(substr($this->in, $this->chunkPos, $lineEnd - $this->chunkPos));
            $this->chunkPos = $lineEnd + 1;
            if ($this->inTrailers) {
                if ($line === '') {
                    $body = $this->chunkBody;
                    $this->in = (string) substr($this->in, $this->chunkPos);
                    $this->chunkBody = '';
                    return $body;
                }
                continue; // trailers are ignored
            }
            $size = trim(explode(';', $line, 2)[0]);
            if (!preg_match('/^[0-9a-fA-F]{1,8}$/D', $size)) {
                throw new HttpError(400, 'body: malformed chunked encoding', 'body');
            }
            $this->chunkLeft = hexdec($size);
            if (strlen($this->chunkBody) + $this->chunkLeft > MAX_BODY_BYTES) {
                throw new HttpError(413, 'body: larger than ' . MAX_BODY_BYTES . ' bytes', 'body');
            }
            $this->inTrailers = $this->chunkLeft === 0;
        }
    }

    private function checkLineLength(): void
    {
        if (strlen($this->in) - $this->chunkPos > $this->chunkLeft + 1024) {
            throw new HttpError(400, 'body: malformed chunked encoding', 'body');
        }
    }
}
