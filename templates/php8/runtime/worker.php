<?php

/**
 * A worker process of the php8 replica: forked by the supervisor, it loads function/handler.php
 * once and then runs one invocation at a time, receiving the raw /invoke body over its socket pair
 * and sending back the answer (status, headers, body). The supervisor owns every client
 * connection; a worker never touches the network except to read data.
 */

declare(strict_types=1);

namespace Eofaas;

use Context;
use Cursor;
use Data;
use FunctionError;

/** A decoded /invoke body. */
final class Invocation
{
    public function __construct(
        public readonly string $id,
        public readonly ?Cursor $cursor,
        public readonly \stdClass $args,
        public readonly ?int $deadlineMs,
        public readonly int $attempt,
    ) {
    }

    /** @throws FieldError naming the bad field */
    public static function decode(string $body): self
    {
        try {
            $request = trim($body) === ''
                ? new \stdClass()
                : json_decode($body, false, 512, JSON_BIGINT_AS_STRING | JSON_THROW_ON_ERROR);
        } catch (\JsonException $error) {
            throw new FieldError('body', 'invalid JSON: ' . $error->getMessage());
        }
        if (!$request instanceof \stdClass) {
            throw new FieldError('body', 'must be a JSON object');
        }
        $id = $request->id ?? '';
        if (!is_string($id)) {
            throw new FieldError('id', 'must be a string');
        }
        $cursor = isset($request->cursor) ? parseCursor($request->cursor) : null;
        // Left as json_decode() made it: JSON objects are stdClass, lists are arrays, so that
        // json_encode() gives the same JSON back ({} and {"0": ...} stay objects).
        $args = $request->args ?? new \stdClass();
        if (!$args instanceof \stdClass) {
            throw new FieldError('args', 'must be a JSON object');
        }
        $deadlineMs = parseInt($request->deadline_ms ?? null, 'deadline_ms', 0, 0);
        return new self(
            id: $id,
            cursor: $cursor,
            args: $args,
            deadlineMs: $deadlineMs === 0 ? null : $deadlineMs, // 0 means no deadline
            attempt: parseInt($request->attempt ?? null, 'attempt', 0, 0),
        );
    }
}

/**
 * The worker of this process. Lifecycle: start() right after fork, then the handler file is
 * required in the global scope (by server.php), then loaded() or failLoad(), then serve() until
 * the supervisor closes the socket pair.
 */
final class Worker
{
    private const LOADING = 0;
    private const IDLE = 1;
    private const INVOKING = 2;
    /** Errors that end the process; the rest become exceptions (see raiseWarning()). */
    private const FATAL_ERRORS = E_ERROR | E_PARSE | E_CORE_ERROR | E_COMPILE_ERROR;

    private static ?self $current = null;

    private int $state = self::LOADING;
    private string $invocationId = '';
    private readonly int $pid;
    /** Bytes received from the supervisor and not taken as a frame yet. */
    private string $received = '';

    /** @param resource $channel this worker's end of the socket pair */
    private function __construct(
        private readonly mixed $channel,
        private readonly string $functionDir,
        private readonly string $functionName,
    ) {
        $this->pid = getmypid();
    }

    /** Sets up a freshly forked process as the worker. */
    public static function start(mixed $channel, string $functionDir, string $functionName): void
    {
        // SIGINT from a terminal reaches the whole process group and SIGTERM may too: the
        // supervisor alone decides when a worker stops (it closes the socket pair or kills it).
        pcntl_async_signals(false);
        foreach ([SIGTERM, SIGINT] as $signal) {
            pcntl_signal($signal, SIG_IGN);
        }
        pcntl_signal(SIGCHLD, SIG_DFL);
        stream_set_blocking($channel, true);
        stream_set_read_buffer($channel, 0);
        @cli_set_process_title('eofaas php8 worker');
        $worker = new self($channel, $functionDir, $functionName);
        self::$current = $worker;
        // Warnings and notices become ErrorExceptions (unhandled function errors) rather than
        // silently wrong results; `@` still silences them, deprecations are only logged.
        set_error_handler([self::class, 'raiseWarning']);
        register_shutdown_function([$worker, 'onShutdown']);
        set_include_path($functionDir . PATH_SEPARATOR . get_include_path());
    }

    /** Error handler: a warning or notice becomes an ErrorException; `@` and deprecations pass. */
    public static function raiseWarning(
        int $severity,
        string $message,
        string $file,
        int $line,
    ): bool {
        $passed = E_DEPRECATED | E_USER_DEPRECATED;
        if ((error_reporting() & $severity) === 0 || ($severity & $passed) !== 0) {
            return false;
        }
        throw new \ErrorException($message, 0, $severity, $file, $line);
    }

    public static function current(): self
    {
        return self::$current;
    }

    /** The file to require; a missing one fails the load with a clear message. */
    public function handlerFile(): string
    {
        $file = $this->functionDir . '/handler.php';
        if (!is_file($file)) {
            $this->failLoad("{$file} does not exist");
        }
        return $file;
    }

    public function loaded(): void
    {
        if (!function_exists('handle')) {
            $file = "{$this->functionDir}/handler.php";
            $signature = 'handle(Data $data, Context $ctx)';
            $this->failLoad("{$file} does not define {$signature} in the global namespace");
        }
        $this->state = self::IDLE;
        $this->send(WorkerMessage::LOADED);
    }

    /** @param \Throwable|string $error what the handler threw (with its trace), or why not */
    public function failLoad(\Throwable|string $error): never
    {
        $this->send(WorkerMessage::LOAD_FAILED . $error);
        $this->state = self::IDLE; // nothing left for the shutdown function to report
        exit(1);
    }

    /** Runs invocations until the supervisor closes the socket pair. */
    public function serve(): never
    {
        while (($payload = $this->receive()) !== null) {
            $arrivedNs = unpack('J', $payload)[1];
            $answer = $this->invoke(substr($payload, 8), $arrivedNs);
            $this->sendAnswer(WorkerMessage::RESPONSE, $answer);
        }
        exit(0);
    }

    /**
     * Reports a fatal error or exit() that ends the process: while loading, as the load error;
     * during an invocation, as its unhandled function error.
     */
    public function onShutdown(): void
    {
        if (getmypid() !== $this->pid || $this->state === self::IDLE) {
            return; // a normal exit, or a process the handler forked
        }
        $error = error_get_last();
        $isFatal = $error !== null && ($error['type'] & self::FATAL_ERRORS) !== 0;
        $what = $isFatal
            ? "{$error['message']} in {$error['file']}:{$error['line']}"
            : 'exit() was called';
        if ($this->state === self::LOADING) {
            $this->send(WorkerMessage::LOAD_FAILED . $what);
            return;
        }
        log('invocation ' . json_encode($this->invocationId) . " ended the worker: {$what}");
        $headers = "Content-Type: application/json\r\n" . FUNCTION_ERROR_HEADER . ": unhandled\r\n";
        $body = errorBody($isFatal ? 'FatalError' : 'Exit', $what);
        $this->sendAnswer(WorkerMessage::LAST_RESPONSE, [200, $headers, $body]);
    }

    /** @return array{int, string, string} status, header lines, body */
    private function invoke(string $body, int $arrivedNs): array
    {
        try {
            $invocation = Invocation::decode($body);
        } catch (FieldError $error) {
            $body = errorBody('InvalidArgument', $error->getMessage(), ['field' => $error->field]);
            return [400, "Content-Type: application/json\r\n", $body];
        }
        // Per-operation network timeout for the reader: the caller's budget if it gave one.
        $deadlineMs = $invocation->deadlineMs;
        $timeout = $deadlineMs === null ? 60.0 : max(1.0, $deadlineMs / 1000);
        $data = new Data($invocation->cursor, $timeout);
        $ctx = new Context(
            id: $invocation->id,
            args: $invocation->args,
            attempt: $invocation->attempt,
            deadlineMs: $invocation->deadlineMs,
            function: $this->functionName,
            cursor: $invocation->cursor,
            arrivedNs: $arrivedNs,
        );
        $this->invocationId = $invocation->id;
        $this->state = self::INVOKING;
        try {
            [$body, $contentType] = self::encodeResult(\handle($data, $ctx));
        } catch (FunctionError $error) {
            return self::functionError('handled', $error);
        } catch (\Throwable $error) {
            log('invocation ' . json_encode($invocation->id) . " failed:\n{$error}");
            return self::functionError('unhandled', $error);
        } finally {
            $this->state = self::IDLE;
            $data->close();
        }
        return [200, $contentType === null ? '' : "Content-Type: {$contentType}\r\n", $body];
    }

    /**
     * Turns a handler's return value into [body, content type].
     *
     * @throws \JsonException for a value JSON cannot represent
     */
    private static function encodeResult(mixed $result): array
    {
        if ($result === null) {
            return ['', null];
        }
        if (is_string($result)) {
            return [$result, 'application/octet-stream'];
        }
        $flags = JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_PRESERVE_ZERO_FRACTION
            | JSON_THROW_ON_ERROR;
        return [json_encode($result, $flags), 'application/json'];
    }

    /** @return array{int, string, string} */
    private static function functionError(string $kind, \Throwable $error): array
    {
        $headers = "Content-Type: application/json\r\n" . FUNCTION_ERROR_HEADER . ": {$kind}\r\n";
        return [200, $headers, errorBody(shortClassName($error), $error->getMessage())];
    }

    /** @param array{int, string, string} $answer status, header lines, body */
    private function sendAnswer(string $kind, array $answer): void
    {
        [$status, $headers, $body] = $answer;
        $this->send($kind . pack('nN', $status, strlen($headers)) . $headers . $body);
    }

    private function send(string $payload): void
    {
        $frame = Frame::encode($payload);
        for ($sent = 0; $sent < strlen($frame); $sent += $written) {
            $written = @fwrite($this->channel, substr($frame, $sent, 1024 * 1024));
            if ($written === false || $written === 0) {
                exit(1); // the supervisor is gone
            }
        }
    }

    /** The next frame's payload; null when the supervisor closed the socket pair. */
    private function receive(): ?string
    {
        while (($payload = Frame::take($this->received)) === null) {
            $bytes = @fread($this->channel, 1 << 20);
            if ($bytes === false || $bytes === '') {
                return null;
            }
            $this->received .= $bytes;
        }
        return $payload;
    }
}
