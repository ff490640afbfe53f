<?php

/**
 * The supervisor process of a php8 replica: the only process that accepts and speaks HTTP.
 *
 * PHP has no threads, so concurrency comes from a pre-forked pool of EOFAAS_CONCURRENCY worker
 * processes. Workers do not accept connections themselves: with keep-alive, a worker blocked on an
 * idle connection could not serve another, /healthz could not be answered while every worker is
 * busy, and nobody could turn away request N+1. Instead this process owns the listening socket and
 * every connection in one non-blocking stream_select() loop. It parses requests, answers /healthz
 * and every refusal (404/405/400/413/429/503) itself, and hands each admitted /invoke body to an
 * idle worker over that worker's socket pair; the worker's answer comes back the same way and is
 * written to the client. Admission is therefore exact: an invocation is taken when a worker is idle
 * and refused with 429 at once when none is, and /healthz never waits for a handler.
 *
 * Lifecycle: listen, fork the workers (each loads function/handler.php), become healthy once all
 * of them have loaded, serve. A worker that dies (exit() in a handler, a crash) is replaced; a
 * handler that fails to load stops the replica with exit status 1. SIGTERM or SIGINT drains: new
 * invocations get 503 and /healthz 503, in-flight invocations finish and are answered (up to
 * EOFAAS_DRAIN_TIMEOUT_MS; then their workers are killed), then the process exits 0.
 */

declare(strict_types=1);

namespace Eofaas;

/** The replica's settings, from its environment. */
final class Config
{
    public function __construct(
        public readonly string $host,
        public readonly int $port,
        public readonly int $concurrency,
        public readonly int $drainTimeoutMs,
        public readonly string $functionName,
        public readonly string $functionDir,
    ) {
    }

    public static function fromEnvironment(): self
    {
        $host = trim((string) getenv('EOFAAS_HOST'));
        $functionDir = (string) getenv('EOFAAS_FUNCTION_DIR');
        if ($functionDir === '') {
            $functionDir = dirname(__DIR__) . '/function';
        } elseif (!str_starts_with($functionDir, '/')) {
            $functionDir = getcwd() . '/' . $functionDir;
        }
        return new self(
            host: $host === '' ? '127.0.0.1' : $host,
            port: self::int('EOFAAS_PORT', 8080, 0, 65535),
            concurrency: self::int('EOFAAS_CONCURRENCY', 4, 1, Supervisor::MAX_WORKERS),
            drainTimeoutMs: self::int('EOFAAS_DRAIN_TIMEOUT_MS', 10000, 0, PHP_INT_MAX),
            functionName: (string) getenv('EOFAAS_FUNCTION'),
            functionDir: rtrim($functionDir, '/'),
        );
    }

    private static function int(string $name, int $default, int $minimum, int $maximum): int
    {
        $raw = trim((string) getenv($name));
        if ($raw === '') {
            return $default;
        }
        $value = preg_match('/^[+-]?[0-9]{1,18}$/D', $raw) ? (int) $raw : $minimum - 1;
        if ($value < $minimum || $value > $maximum) {
            log("{$name} must be an integer in [{$minimum}, {$maximum}], got '{$raw}'");
            exit(2);
        }
        return $value;
    }
}

/** The supervisor's view of one worker process. */
final class WorkerSlot
{
    public const LOADING = 0;
    public const IDLE = 1;
    public const BUSY = 2;
    /** Sent its last answer and is exiting: never given work again. */
    public const RETIRING = 3;

    public int $state = self::LOADING;
    /** Bytes received from the worker and not taken as a frame yet. */
    public string $in = '';
    /** Frame bytes for the worker; written up to $sent. */
    public string $out = '';
    public int $sent = 0;
    /** The connection and request of the invocation it runs (BUSY only). */
    public ?Connection $client = null;
    public ?Request $request = null;

    /** @param resource $stream the supervisor's end of the socket pair */
    public function __construct(public readonly int $pid, public readonly mixed $stream)
    {
    }
}

/** Thrown in a newly forked worker process to unwind the supervisor's stack back to main(). */
final class WorkerForked extends \Exception
{
}

/**
 * The event loop described at the top of this file. Single-threaded; signal handlers only set a
 * flag and wake the loop through a socket pair.
 */
final class Supervisor
{
    /** stream_select() uses select(2): every descriptor must stay below FD_SETSIZE (1024). */
    public const MAX_WORKERS = 256;
    private const MAX_DESCRIPTORS = 1000;
    private const READ_BYTES = 256 * 1024;
    private const WRITE_BYTES = 1024 * 1024;
    private const ROUTES = ['/healthz' => ['GET', 'HEAD'], '/invoke' => ['POST']];
    private const SIGNAL_NAMES = [SIGTERM => 'SIGTERM', SIGINT => 'SIGINT'];
    private const JSON = "Content-Type: application/json\r\n";
    private const TEXT = "Content-Type: text/plain; charset=utf-8\r\n";

    /** @var array<int, Connection> by resource id */
    private array $connections = [];
    /** @var array<int, WorkerSlot> by resource id */
    private array $workers = [];
    private bool $ready = false;
    private bool $draining = false;
    private int $drainDeadlineNs = 0;
    private int $signal = 0;
    private ?string $loadError = null;
    /** @var resource */
    private mixed $wakeRead;
    /** @var resource */
    private mixed $wakeWrite;

    /** @param resource $listener */
    public function __construct(private readonly mixed $listener, private readonly Config $config)
    {
        [$this->wakeRead, $this->wakeWrite] = self::socketPair();
        foreach ([$this->wakeRead, $this->wakeWrite, $listener] as $stream) {
            stream_set_blocking($stream, false);
        }
        pcntl_async_signals(true);
        foreach (array_keys(self::SIGNAL_NAMES) as $signal) {
            pcntl_signal($signal, function (int $signal): void {
                $this->signal = $this->signal ?: $signal;
                @fwrite($this->wakeWrite, 'x');
            });
        }
        pcntl_signal(SIGPIPE, SIG_IGN); // a client that hung up is an fwrite() error, not death
    }

    /**
     * Serves until drained (returns 0) or until the handler cannot be loaded (returns 1).
     *
     * @throws WorkerForked in a new worker process
     */
    public function run(): int
    {
        for ($i = 0; $i < $this->config->concurrency; $i++) {
            $this->spawn();
        }
        while (true) {
            if ($this->loadError !== null) {
                $dir = $this->config->functionDir;
                log("cannot load the handler from {$dir}:\n{$this->loadError}");
                $this->stop(false);
                return 1;
            }
            if ($this->signal !== 0 && !$this->draining) {
                $this->draining = true;
                $this->drainDeadlineNs = hrtime(true) + $this->config->drainTimeoutMs * 1_000_000;
                log(self::SIGNAL_NAMES[$this->signal] . ', draining');
            }
            if ($this->draining && $this->inFlight() === 0) {
                log('drained');
                $this->stop(true);
                return 0;
            }
            if ($this->draining && hrtime(true) >= $this->drainDeadlineNs) {
                $seconds = $this->config->drainTimeoutMs / 1000;
                log("drain timeout after {$seconds} s; exiting with work in flight");
                $this->stop(false);
                return 0;
            }
            $this->poll();
        }
    }

    /** Invocations admitted and not yet answered in full. */
    private function inFlight(): int
    {
        $count = 0;
        foreach ($this->workers as $worker) {
            $count += $worker->state === WorkerSlot::BUSY ? 1 : 0;
        }
        foreach ($this->connections as $connection) {
            $count += $connection->answering ? 1 : 0;
        }
        return $count;
    }

    private function poll(): void
    {
        $read = [$this->wakeRead];
        $write = [];
        if (count($this->connections) + count($this->workers) < self::MAX_DESCRIPTORS) {
            $read[] = $this->listener;
        }
        foreach ($this->workers as $worker) {
            $read[] = $worker->stream;
            if ($worker->out !== '') {
                $write[] = $worker->stream;
            }
        }
        foreach ($this->connections as $connection) {
            if ($connection->out !== '') {
                $write[] = $connection->stream;
            } elseif (!$connection->waiting) {
                $read[] = $connection->stream;
            }
        }
        $timeoutUs = 1_000_000;
        if ($this->draining) {
            $leftUs = intdiv($this->drainDeadlineNs - hrtime(true), 1000);
            $timeoutUs = max(0, min($timeoutUs, $leftUs));
        }
        $except = null;
        // false when a signal interrupted the wait: the loop looks at the flag and comes back.
        if (!@stream_select($read, $write, $except, 0, $timeoutUs)) {
            return;
        }
        foreach ($read as $stream) {
            $id = get_resource_id($stream);
            if ($stream === $this->wakeRead) {
                @fread($this->wakeRead, 64);
            } elseif ($stream === $this->listener) {
                $this->accept();
            } elseif (isset($this->workers[$id])) {
                $this->readWorker($this->workers[$id]);
            } elseif (isset($this->connections[$id])) {
                $this->readConnection($this->connections[$id]);
            }
        }
        foreach ($write as $stream) {
            $id = get_resource_id($stream);
            if (isset($this->workers[$id])) {
                $this->writeWorker($this->workers[$id]);
            } elseif (isset($this->connections[$id])) {
                $this->serve($this->connections[$id]); // then requests pipelined behind the answer
            }
        }
    }

    private function accept(): void
    {
        for ($i = 0; $i < 64; $i++) {
            $stream = @stream_socket_accept($this->listener, 0);
            if ($stream === false) {
                return;
            }
            stream_set_blocking($stream, false);
            stream_set_read_buffer($stream, 0); // fread() then returns up to READ_BYTES, not 8 KiB
            $this->connections[get_resource_id($stream)] = new Connection($stream);
        }
    }

    private function readConnection(Connection $connection): void
    {
        $bytes = @fread($connection->stream, self::READ_BYTES);
        if ($bytes === false || $bytes === '') {
            if ($bytes === false || feof($connection->stream)) {
                $this->close($connection);
            }
            return;
        }
        $connection->in .= $bytes;
        $this->serve($connection);
    }

    /**
     * Writes the connection's pending output, then answers its complete requests in order until
     * one is with a worker, output blocks or the connection is closed.
     */
    private function serve(Connection $connection): void
    {
        while ($this->write($connection) && $connection->out === '' && !$connection->waiting) {
            try {
                $request = $connection->nextRequest(function () use ($connection): void {
                    $connection->out .= "HTTP/1.1 100 Continue\r\n\r\n";
                });
            } catch (HttpError $error) {
                // The rest of the stream cannot be trusted: answer, then close.
                $extra = $error->field === null ? [] : ['field' => $error->field];
                $body = errorBody('InvalidArgument', $error->getMessage(), $extra);
                $this->respond($connection, null, $error->status, self::JSON, $body);
                continue;
            }
            if ($request === null) {
                $this->write($connection); // a "100 Continue", if any
                return;
            }
            $this->route($connection, $request);
        }
    }

    private function route(Connection $connection, Request $request): void
    {
        $allowed = self::ROUTES[$request->path] ?? null;
        if ($allowed === null) {
            $message = "no route {$request->path}";
            $this->respondError($connection, $request, 404, 'NotFound', $message);
        } elseif (!in_array($request->method, $allowed, true)) {
            $this->respondError(
                $connection,
                $request,
                405,
                'MethodNotAllowed',
                "{$request->method} {$request->path}",
                'Allow: ' . implode(', ', $allowed) . "\r\n",
            );
        } elseif ($request->path === '/healthz') {
            [$status, $body] = match (true) {
                $this->draining => [503, 'draining'],
                !$this->ready => [503, 'starting'],
                default => [200, 'ok'],
            };
            $this->respond($connection, $request, $status, self::TEXT, $body);
        } elseif ($this->draining) {
            $this->respondError($connection, $request, 503, 'Unavailable', 'draining');
        } elseif (!$this->ready) {
            $this->respondError($connection, $request, 503, 'Unavailable', 'starting');
        } else {
            $this->dispatch($connection, $request);
        }
    }

    /** Hands the invocation to an idle worker, or answers 429 when every worker is busy. */
    private function dispatch(Connection $connection, Request $request): void
    {
        foreach ($this->workers as $worker) {
            if ($worker->state === WorkerSlot::IDLE) {
                $worker->state = WorkerSlot::BUSY;
                $worker->client = $connection;
                $worker->request = $request;
                $worker->out .= Frame::encode(pack('J', $request->arrivedNs) . $request->body);
                $connection->waiting = true;
                $this->writeWorker($worker);
                return;
            }
        }
        $message = "{$this->config->concurrency} invocations in flight";
        $this->respondError($connection, $request, 429, 'ResourceExhausted', $message);
    }

    private function respondError(
        Connection $connection,
        Request $request,
        int $status,
        string $type,
        string $message,
        string $headers = '',
    ): void {
        $body = errorBody($type, $message);
        $this->respond($connection, $request, $status, self::JSON . $headers, $body);
    }

    /**
     * Queues a response. $request null: the request could not be parsed, close after answering.
     * While draining every response says "Connection: close", which tells the proxy to drop it.
     */
    private function respond(
        Connection $connection,
        ?Request $request,
        int $status,
        string $headers,
        string $body,
    ): void {
        $close = $request === null || !$request->keepAlive || $this->draining;
        $head = "HTTP/1.1 {$status} " . (REASONS[$status] ?? 'Unknown') . "\r\n"
            . "Server: eofaas-php8\r\n"
            . 'Date: ' . gmdate('D, d M Y H:i:s') . " GMT\r\n"
            . $headers
            . 'Content-Length: ' . strlen($body) . "\r\n";
        if ($close) {
            $head .= "Connection: close\r\n";
        } elseif ($request->http10) {
            $head .= "Connection: keep-alive\r\n";
        }
        $withBody = $request === null || $request->method !== 'HEAD';
        $connection->out .= $head . "\r\n" . ($withBody ? $body : '');
        $connection->closing = $close;
    }

    /** Writes what the socket takes; false once the connection is closed. */
    private function write(Connection $connection): bool
    {
        if (!self::flush($connection->stream, $connection->out, $connection->sent)) {
            $this->close($connection);
            return false;
        }
        if ($connection->out !== '') {
            return true;
        }
        $connection->answering = false;
        if ($connection->closing) {
            $this->close($connection);
            return false;
        }
        return true;
    }

    /**
     * Writes $buffer from offset $sent on until the socket would block, in slices, so that a large
     * answer is not copied again for every partial write. Empties the buffer once all of it is
     * written; false on a write error.
     */
    private static function flush(mixed $stream, string &$buffer, int &$sent): bool
    {
        while ($sent < strlen($buffer)) {
            $written = @fwrite($stream, substr($buffer, $sent, self::WRITE_BYTES));
            if ($written === false) {
                return false;
            }
            if ($written === 0) {
                return true; // the socket's buffer is full
            }
            $sent += $written;
        }
        $buffer = '';
        $sent = 0;
        return true;
    }

    private function close(Connection $connection): void
    {
        unset($this->connections[get_resource_id($connection->stream)]);
        fclose($connection->stream);
    }

    /**
     * Forks a worker. In the child this throws WorkerForked after closing every descriptor of the
     * supervisor (a child holding a client socket would keep that connection open).
     */
    private function spawn(): void
    {
        [$ours, $theirs] = self::socketPair();
        $signals = array_keys(self::SIGNAL_NAMES);
        pcntl_sigprocmask(SIG_BLOCK, $signals); // no supervisor handler may run in the child
        $pid = pcntl_fork();
        if ($pid === 0) {
            fclose($ours);
            foreach ($this->connections as $connection) {
                fclose($connection->stream);
            }
            foreach ($this->workers as $worker) {
                fclose($worker->stream);
            }
            fclose($this->listener);
            fclose($this->wakeRead);
            fclose($this->wakeWrite);
            Worker::start($theirs, $this->config->functionDir, $this->config->functionName);
            pcntl_sigprocmask(SIG_UNBLOCK, $signals);
            throw new WorkerForked();
        }
        pcntl_sigprocmask(SIG_UNBLOCK, $signals);
        fclose($theirs);
        if ($pid === -1) {
            fclose($ours);
            $this->loadError ??= 'cannot fork a worker: ' . pcntl_strerror(pcntl_get_last_error());
            return;
        }
        stream_set_blocking($ours, false);
        stream_set_read_buffer($ours, 0);
        $this->workers[get_resource_id($ours)] = new WorkerSlot($pid, $ours);
    }

    private function writeWorker(WorkerSlot $worker): void
    {
        // On an error the worker is gone: its socket reports EOF next.
        self::flush($worker->stream, $worker->out, $worker->sent);
    }

    private function readWorker(WorkerSlot $worker): void
    {
        $bytes = @fread($worker->stream, self::READ_BYTES);
        if ($bytes === false || $bytes === '') {
            if ($bytes === false || feof($worker->stream)) {
                $this->onWorkerExit($worker);
            }
            return;
        }
        $worker->in .= $bytes;
        while (($payload = Frame::take($worker->in)) !== null) {
            $this->onWorkerMessage($worker, $payload);
        }
    }

    private function onWorkerMessage(WorkerSlot $worker, string $payload): void
    {
        $kind = $payload[0] ?? '';
        if ($kind === WorkerMessage::LOADED) {
            $worker->state = WorkerSlot::IDLE;
            $this->ready = $this->ready || (count($this->workers) === $this->config->concurrency
                && !in_array(WorkerSlot::LOADING, array_column($this->workers, 'state'), true));
        } elseif ($kind === WorkerMessage::LOAD_FAILED) {
            $this->loadError ??= substr($payload, 1);
        } elseif ($kind === WorkerMessage::RESPONSE || $kind === WorkerMessage::LAST_RESPONSE) {
            ['status' => $status, 'length' => $length] = unpack('nstatus/Nlength', $payload, 1);
            $worker->state = $kind === WorkerMessage::RESPONSE
                ? WorkerSlot::IDLE
                : WorkerSlot::RETIRING;
            $headers = substr($payload, 7, $length);
            $this->answer($worker, $status, $headers, substr($payload, 7 + $length));
        }
    }

    /** Queues the answer of the worker's invocation on its connection, if that is still open. */
    private function answer(WorkerSlot $worker, int $status, string $headers, string $body): void
    {
        $connection = $worker->client;
        $request = $worker->request;
        $worker->client = null;
        $worker->request = null;
        $open = $connection !== null
            && isset($this->connections[get_resource_id($connection->stream)]);
        if (!$open) {
            return; // the client hung up
        }
        $connection->waiting = false;
        $connection->answering = true;
        $this->respond($connection, $request, $status, $headers, $body);
        $this->serve($connection);
    }

    private function onWorkerExit(WorkerSlot $worker): void
    {
        unset($this->workers[get_resource_id($worker->stream)]);
        fclose($worker->stream);
        $how = self::describeExit(self::reap($worker->pid));
        if ($worker->state === WorkerSlot::LOADING) {
            $this->loadError ??= "the worker loading it exited ({$how})";
        } elseif ($worker->state === WorkerSlot::BUSY) {
            log("worker {$worker->pid} exited during an invocation ({$how})");
            $headers = self::JSON . FUNCTION_ERROR_HEADER . ": unhandled\r\n";
            $message = "the worker process running the invocation exited ({$how})";
            $this->answer($worker, 200, $headers, errorBody('WorkerExited', $message));
        }
        if (!$this->draining && $this->loadError === null) {
            $this->spawn();
        }
    }

    /** @return array{resource, resource} */
    private static function socketPair(): array
    {
        return stream_socket_pair(STREAM_PF_UNIX, STREAM_SOCK_STREAM, 0);
    }

    /** Waits for a worker whose socket closed, i.e. that is exiting; returns its wait status. */
    private static function reap(int $pid): int
    {
        $status = 0;
        for ($i = 0; $i < 1000; $i++) {
            if (pcntl_waitpid($pid, $status, WNOHANG) !== 0) {
                return $status;
            }
            usleep(1000);
        }
        posix_kill($pid, SIGKILL);
        pcntl_waitpid($pid, $status);
        return $status;
    }

    private static function describeExit(int $status): string
    {
        if (pcntl_wifsignaled($status)) {
            return 'killed by signal ' . pcntl_wtermsig($status);
        }
        return 'exit status ' . pcntl_wexitstatus($status);
    }

    /**
     * Ends the workers: gracefully, idle ones see their socket pair close and exit on their own;
     * busy or loading ones (and all of them otherwise) are killed.
     */
    private function stop(bool $graceful): void
    {
        fclose($this->listener);
        foreach ($this->workers as $worker) {
            if (!$graceful || $worker->state !== WorkerSlot::IDLE) {
                posix_kill($worker->pid, SIGKILL);
            }
            fclose($worker->stream);
        }
        $deadline = hrtime(true) + 1_000_000_000;
        foreach ($this->workers as $worker) {
            while (pcntl_waitpid($worker->pid, $status, WNOHANG) === 0) {
                if (hrtime(true) > $deadline) {
                    posix_kill($worker->pid, SIGKILL);
                    pcntl_waitpid($worker->pid, $status);
                    break;
                }
                usleep(1000);
            }
        }
        $this->workers = [];
    }
}

/**
 * Starts the replica: listens, then runs the supervisor, which exits the process when it is done.
 * Returns only in a newly forked worker process, to server.php, which loads the handler.
 */
function main(): void
{
    // Debian builds posix as a shared module that its php.ini enables; a sandbox that does not
    // expose /etc/php runs PHP without any ini file, so load the module by hand then.
    if (!extension_loaded('posix') && function_exists('dl')) {
        @dl('posix.so');
    }
    foreach (['pcntl', 'posix'] as $extension) {
        if (!extension_loaded($extension)) {
            log("the PHP extension {$extension} is required");
            exit(1);
        }
    }
    error_reporting(E_ALL);
    ini_set('display_errors', 'stderr'); // a handler's warnings belong in the log, not on stdout
    ini_set('log_errors', '0'); // ... once
    ini_set('memory_limit', '-1'); // as Debian's php-cli; the container's limit is the real one
    $config = Config::fromEnvironment();

    $host = str_contains($config->host, ':') ? "[{$config->host}]" : $config->host;
    // A proxy may open a whole connection pool at once: a backlog of 128, as in the python3
    // template.
    $context = stream_context_create(['socket' => ['backlog' => 128, 'tcp_nodelay' => true]]);
    $flags = STREAM_SERVER_BIND | STREAM_SERVER_LISTEN;
    $address = "tcp://{$host}:{$config->port}";
    $listener = @stream_socket_server($address, $errno, $error, $flags, $context);
    if ($listener === false) {
        log("cannot listen on {$config->host}:{$config->port}: {$error}");
        exit(1);
    }
    $generation = getenv('EOFAAS_GENERATION') ?: '-';
    $replica = getenv('EOFAAS_REPLICA') ?: '-';
    $name = $config->functionName === '' ? '-' : $config->functionName;
    log('listening on ' . stream_socket_get_name($listener, false) . " (function {$name}, "
        . "generation {$generation}, replica {$replica}, concurrency {$config->concurrency})", ' ');

    $supervisor = new Supervisor($listener, $config);
    try {
        $status = $supervisor->run();
    } catch (WorkerForked) {
        return;
    }
    exit($status);
}
