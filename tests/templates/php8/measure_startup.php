<?php

/**
 * Measures how long a php8 replica takes from spawn to its first 200 on /healthz.
 *
 * Usage (from the repository root): /usr/bin/php tests/templates/php8/measure_startup.php [runs]
 * Uses the example function examples/php8-linecount and the template's default concurrency
 * (EOFAAS_CONCURRENCY overrides it). Not part of the test suite.
 */

declare(strict_types=1);

namespace EofaasTest;

require_once __DIR__ . '/support.php';

function freePort(): int
{
    $socket = stream_socket_server('tcp://127.0.0.1:0');
    $port = (int) explode(':', stream_socket_get_name($socket, false))[1];
    fclose($socket);
    return $port;
}

function healthy(int $port): bool
{
    $socket = @stream_socket_client("tcp://127.0.0.1:{$port}", $errno, $error, 1);
    if ($socket === false) {
        return false;
    }
    fwrite($socket, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    $status = fgets($socket);
    fclose($socket);
    return str_starts_with((string) $status, 'HTTP/1.1 200');
}

function measureOnce(): float
{
    $port = freePort();
    $env = environment(array_filter([
        'EOFAAS_PORT' => (string) $port,
        'EOFAAS_FUNCTION_DIR' => REPO_ROOT . '/examples/php8-linecount',
        'EOFAAS_CONCURRENCY' => getenv('EOFAAS_CONCURRENCY') ?: null,
    ]));
    $started = hrtime(true);
    $descriptors = [2 => ['file', '/dev/null', 'w']];
    $process = proc_open([PHP, 'runtime/server.php'], $descriptors, $pipes, TEMPLATE_DIR, $env);
    try {
        while (!healthy($port)) {
            if (!proc_get_status($process)['running']) {
                throw new \RuntimeException('replica exited');
            }
            usleep(500);
        }
        return (hrtime(true) - $started) / 1e6;
    } finally {
        proc_terminate($process, SIGTERM);
        proc_close($process);
    }
}

$runs = (int) ($argv[1] ?? 20);
$samples = [];
for ($i = 0; $i < $runs; $i++) {
    $samples[] = measureOnce();
}
sort($samples);
printf(
    "spawn -> first 200 /healthz over %d runs: min %.1f ms, median %.1f ms, max %.1f ms\n",
    $runs,
    $samples[0],
    $samples[intdiv($runs, 2)],
    $samples[$runs - 1],
);
