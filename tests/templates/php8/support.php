<?php

/**
 * Shared helpers for the php8 template tests: a minimal xUnit-style TestCase, a Range-capable data
 * server (file_server.php) run as a process, a raw HTTP/1.1 client and a replica process started
 * from the real runtime/server.php.
 */

declare(strict_types=1);

namespace EofaasTest;

const REPO_ROOT = __DIR__ . '/../../..';
const TEMPLATE_DIR = REPO_ROOT . '/templates/php8';
/** The interpreter template.yaml runs replicas with. */
const PHP = '/usr/bin/php';

require_once TEMPLATE_DIR . '/runtime/common.php';
require_once TEMPLATE_DIR . '/runtime/eofaas.php';
require_once TEMPLATE_DIR . '/runtime/reader.php';

final class AssertionFailed extends \Exception
{
}

/**
 * Base class of the tests: public methods named test* run on a fresh instance each, between
 * setUp() and tearDown(); cleanups registered with addCleanup() run after them, last first.
 */
abstract class TestCase
{
    /** @var list<callable> */
    private array $cleanups = [];

    public static function setUpClass(): void
    {
    }

    public static function tearDownClass(): void
    {
    }

    public function setUp(): void
    {
    }

    public function tearDown(): void
    {
    }

    public function addCleanup(callable $cleanup): void
    {
        $this->cleanups[] = $cleanup;
    }

    public function runCleanups(): void
    {
        while (($cleanup = array_pop($this->cleanups)) !== null) {
            $cleanup();
        }
    }

    /** A temporary directory removed after the test. */
    protected function tempDir(): string
    {
        $dir = makeTempDir();
        $this->addCleanup(fn () => removeTree($dir));
        return $dir;
    }

    protected static function assertSame(mixed $expected, mixed $actual, string $context = ''): void
    {
        if ($expected !== $actual) {
            $message = 'expected ' . export($expected) . ', got ' . export($actual);
            throw new AssertionFailed(trim("{$context} {$message}"));
        }
    }

    protected static function assertTrue(bool $condition, string $message): void
    {
        if (!$condition) {
            throw new AssertionFailed($message);
        }
    }

    protected static function assertContains(
        string $needle,
        string $haystack,
        string $context = '',
    ): void {
        if (!str_contains($haystack, $needle)) {
            $message = export($needle) . ' not in ' . export($haystack);
            throw new AssertionFailed(trim("{$context} {$message}"));
        }
    }

    /** Runs $code and returns what it threw, which must be a $class. */
    protected static function assertThrows(
        string $class,
        callable $code,
        string $context = '',
    ): \Throwable {
        try {
            $code();
        } catch (\Throwable $error) {
            if (!$error instanceof $class) {
                $got = get_class($error) . ': ' . $error->getMessage();
                throw new AssertionFailed(trim("{$context} expected {$class}, got {$got}"));
            }
            return $error;
        }
        throw new AssertionFailed(trim("{$context} expected {$class}, nothing was thrown"));
    }
}

function export(mixed $value): string
{
    $text = is_string($value)
        ? json_encode($value, JSON_INVALID_UTF8_SUBSTITUTE | JSON_UNESCAPED_SLASHES)
        : var_export($value, true);
    return strlen($text) > 300 ? substr($text, 0, 300) . '...' : $text;
}

/** Polls $predicate until it returns a truthy value, which is returned. */
function waitUntil(callable $predicate, string $what, float $timeout = 5.0): mixed
{
    $deadline = microtime(true) + $timeout;
    while (true) {
        $value = $predicate();
        if ($value) {
            return $value;
        }
        if (microtime(true) > $deadline) {
            throw new AssertionFailed("timed out waiting for {$what}");
        }
        usleep(2000);
    }
}

function makeTempDir(): string
{
    $dir = sys_get_temp_dir() . '/eofaas-php8-test-' . bin2hex(random_bytes(6));
    mkdir($dir, 0700);
    return $dir;
}

function removeTree(string $path): void
{
    if (is_dir($path) && !is_link($path)) {
        foreach (scandir($path) as $entry) {
            if ($entry !== '.' && $entry !== '..') {
                removeTree("{$path}/{$entry}");
            }
        }
        @rmdir($path);
    } else {
        @unlink($path);
    }
}

/** The environment of this process without EOFAAS_* variables, plus $extra. */
function environment(array $extra): array
{
    $inherited = fn ($name) => !str_starts_with($name, 'EOFAAS_');
    return $extra + array_filter(getenv(), $inherited, ARRAY_FILTER_USE_KEY);
}

/** A child process with its stderr in a file; stop() kills it and its children. */
abstract class Process
{
    /** @var resource */
    public mixed $process;
    /** @var array<int, resource> */
    public array $pipes = [];
    public readonly int $pid;
    private ?int $exitCode = null;

    /** @param ?array $stdout a proc_open() descriptor; /dev/null by default */
    public function __construct(
        array $command,
        string $cwd,
        array $env,
        public readonly string $stderrFile,
        ?array $stdout = null,
    ) {
        $descriptors = [
            0 => ['file', '/dev/null', 'r'],
            1 => $stdout ?? ['file', '/dev/null', 'w'],
            2 => ['file', $stderrFile, 'w'],
        ];
        $this->process = proc_open($command, $descriptors, $this->pipes, $cwd, $env);
        $this->pid = proc_get_status($this->process)['pid'];
    }

    public function stderr(): string
    {
        return (string) @file_get_contents($this->stderrFile);
    }

    /** The exit code once it has exited (-1 when a signal killed it), else null. */
    public function poll(): ?int
    {
        if ($this->exitCode === null) {
            $status = proc_get_status($this->process);
            if (!$status['running']) {
                $this->exitCode = $status['signaled'] ? -1 : $status['exitcode'];
            }
        }
        return $this->exitCode;
    }

    public function wait(float $timeout = 10.0): int
    {
        waitUntil(fn () => $this->poll() !== null, 'the process to exit', $timeout);
        return $this->exitCode;
    }

    public function signal(int $signal): void
    {
        posix_kill($this->pid, $signal);
    }

    public function stop(): void
    {
        if ($this->poll() === null) {
            $file = "/proc/{$this->pid}/task/{$this->pid}/children";
            $children = trim((string) @file_get_contents($file));
            posix_kill($this->pid, SIGKILL);
            foreach ($children === '' ? [] : explode(' ', $children) as $child) {
                posix_kill((int) $child, SIGKILL);
            }
            $this->wait();
        }
        foreach ($this->pipes as $pipe) {
            fclose($pipe);
        }
        proc_close($this->process);
        @unlink($this->stderrFile);
    }
}

/**
 * file_server.php run as a process: serves a directory over HTTP on 127.0.0.1, honouring Range
 * (or ignoring it with $honourRange false, like some static servers).
 */
final class FileServer extends Process
{
    public readonly int $port;

    public function __construct(public readonly string $root, bool $honourRange = true)
    {
        $mode = $honourRange ? 'range' : 'plain';
        parent::__construct(
            [PHP, __DIR__ . '/file_server.php', $root, $mode],
            __DIR__,
            environment([]),
            tempnam(sys_get_temp_dir(), 'eofaas-fileserver-'),
            ['pipe', 'w'],
        );
        $line = fgets($this->pipes[1]);
        if (!preg_match('/^listening on (\d+)$/', (string) $line, $match)) {
            throw new \RuntimeException('file server did not start: ' . $this->stderr());
        }
        $this->port = (int) $match[1];
    }

    public function url(string $path): string
    {
        return "http://127.0.0.1:{$this->port}{$path}";
    }

    /** The Range header of each request since the last call (null where there was none). */
    public function takeRanges(): array
    {
        return json_decode(file_get_contents($this->url('/__ranges')), true);
    }
}

final class Response
{
    /** @param array<string, string> $headers lower-cased names */
    public function __construct(
        public readonly int $status,
        public readonly array $headers,
        public readonly string $body,
    ) {
    }

    public function header(string $name): ?string
    {
        return $this->headers[strtolower($name)] ?? null;
    }

    public function json(): mixed
    {
        return json_decode($this->body, true, 512, JSON_THROW_ON_ERROR);
    }

    /** The "error" object of an error body. */
    public function error(): array
    {
        return $this->json()['error'];
    }

    /** The X-Eofaas-Function-Error header: "handled", "unhandled" or null. */
    public function functionError(): ?string
    {
        return $this->header('X-Eofaas-Function-Error');
    }
}

/** One HTTP/1.1 connection, written and read by hand so tests control every byte. */
final class HttpClient
{
    /** @var resource */
    private mixed $socket;
    private string $buffer = '';

    public function __construct(int $port, float $timeout = 10.0)
    {
        $socket = stream_socket_client("tcp://127.0.0.1:{$port}", $errno, $error, $timeout);
        if ($socket === false) {
            throw new \RuntimeException("cannot connect to port {$port}: {$error}");
        }
        stream_set_timeout($socket, (int) $timeout);
        $this->socket = $socket;
    }

    public function send(
        string $method,
        string $path,
        ?string $body = null,
        array $headers = [],
    ): void {
        $head = "{$method} {$path} HTTP/1.1\r\nHost: 127.0.0.1\r\n";
        if ($body !== null) {
            $head .= 'Content-Length: ' . strlen($body) . "\r\n";
        }
        foreach ($headers as $name => $value) {
            $head .= "{$name}: {$value}\r\n";
        }
        $this->sendRaw($head . "\r\n" . ($body ?? ''));
    }

    public function sendRaw(string $bytes): void
    {
        fwrite($this->socket, $bytes);
    }

    /** Reads one response; a HEAD response has no body whatever its Content-Length says. */
    public function receive(bool $head = false): Response
    {
        while (($end = strpos($this->buffer, "\r\n\r\n")) === false) {
            $this->fill();
        }
        $lines = explode("\r\n", substr($this->buffer, 0, $end));
        $this->buffer = substr($this->buffer, $end + 4);
        preg_match('#^HTTP/1\.[01] (\d{3})#', array_shift($lines), $match);
        $headers = [];
        foreach ($lines as $line) {
            [$name, $value] = explode(':', $line, 2);
            $headers[strtolower($name)] = trim($value);
        }
        $length = $head ? 0 : (int) ($headers['content-length'] ?? 0);
        while (strlen($this->buffer) < $length) {
            $this->fill();
        }
        $body = substr($this->buffer, 0, $length);
        $this->buffer = substr($this->buffer, $length);
        return new Response((int) $match[1], $headers, $body);
    }

    public function request(
        string $method,
        string $path,
        ?string $body = null,
        array $headers = [],
    ): Response {
        $this->send($method, $path, $body, $headers);
        return $this->receive($method === 'HEAD');
    }

    /** True once the server has closed the connection (waits for it up to the timeout). */
    public function closedByServer(): bool
    {
        $bytes = fread($this->socket, 1);
        return ($bytes === '' || $bytes === false) && feof($this->socket);
    }

    public function close(): void
    {
        fclose($this->socket);
    }

    private function fill(): void
    {
        $bytes = fread($this->socket, 65536);
        if ($bytes === '' || $bytes === false) {
            $why = stream_get_meta_data($this->socket)['timed_out'] ? 'timed out' : 'closed';
            throw new \RuntimeException("connection {$why} while reading a response");
        }
        $this->buffer .= $bytes;
    }
}

/**
 * A replica started from runtime/server.php with EOFAAS_PORT=0; the port comes from its start-up
 * log line.
 */
final class Replica extends Process
{
    public int $port = 0;

    /** @param list<string> $phpOptions options of the interpreter, e.g. ["-n"] */
    public function __construct(string $functionDir, array $env = [], array $phpOptions = [])
    {
        $env = environment($env + [
            'EOFAAS_PORT' => '0',
            'EOFAAS_FUNCTION_DIR' => $functionDir,
            'EOFAAS_FUNCTION' => 'test-fn',
        ]);
        $stderrFile = tempnam(sys_get_temp_dir(), 'eofaas-replica-');
        $command = [PHP, ...$phpOptions, 'runtime/server.php'];
        parent::__construct($command, TEMPLATE_DIR, $env, $stderrFile);
    }

    public function waitListening(): self
    {
        $match = waitUntil(function () {
            if (preg_match('/runtime listening on \S+:(\d+)/', $this->stderr(), $match)) {
                return $match;
            }
            return $this->poll() !== null ? ['exited'] : null;
        }, 'the listening log line');
        if ($match === ['exited']) {
            throw new AssertionFailed('replica exited early: ' . $this->stderr());
        }
        $this->port = (int) $match[1];
        return $this;
    }

    public function waitHealthy(): self
    {
        $this->waitListening();
        waitUntil(fn () => $this->request('GET', '/healthz')->status === 200, 'healthy');
        return $this;
    }

    public function client(): HttpClient
    {
        return new HttpClient($this->port);
    }

    public function request(
        string $method,
        string $path,
        ?string $body = null,
        array $headers = [],
    ): Response {
        $client = $this->client();
        try {
            return $client->request($method, $path, $body, $headers);
        } finally {
            $client->close();
        }
    }

    public function invoke(array $fields = []): Response
    {
        $headers = ['Content-Type' => 'application/json'];
        return $this->request('POST', '/invoke', encode($fields), $headers);
    }
}

/** JSON for a request: an empty array is an object. */
function encode(array $fields): string
{
    $flags = JSON_UNESCAPED_SLASHES | JSON_PRESERVE_ZERO_FRACTION | JSON_THROW_ON_ERROR;
    return $fields === [] ? '{}' : json_encode($fields, $flags);
}
