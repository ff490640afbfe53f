<?php

/**
 * Replica server of the php8 template: the eofaas replica protocol over HTTP/1.1.
 *
 *   GET  /healthz  200 "ok" once every worker has loaded function/handler.php; 503 while starting
 *                  or draining.
 *   POST /invoke   runs handle($data, $ctx) for one cursor and answers 200 with the result; a
 *                  handler exception is a function error (200 + X-Eofaas-Function-Error:
 *                  handled|unhandled). 429 beyond EOFAAS_CONCURRENCY invocations in flight (never
 *                  queued), 503 draining.
 * SIGTERM or SIGINT drains: new work gets 503, in-flight invocations finish (up to
 * EOFAAS_DRAIN_TIMEOUT_MS), then the process exits 0. A handler that fails to load exits 1.
 *
 * A supervisor process speaks HTTP and a pool of worker processes runs the handler (see
 * supervisor.php). Run from the bundle root as `php runtime/server.php`; the user's files are in
 * ../function beside this directory unless EOFAAS_FUNCTION_DIR says otherwise.
 */

declare(strict_types=1);

require __DIR__ . '/common.php';
require __DIR__ . '/eofaas.php';
require __DIR__ . '/reader.php';
require __DIR__ . '/http.php';
require __DIR__ . '/worker.php';
require __DIR__ . '/supervisor.php';

Eofaas\main();

// Only a new worker process gets here. It requires the handler at the top level, so that the
// handler file's own top-level variables are globals, as PHP authors expect.
try {
    require Eofaas\Worker::current()->handlerFile();
} catch (Throwable $loadError) {
    Eofaas\Worker::current()->failLoad($loadError);
}
Eofaas\Worker::current()->loaded();
Eofaas\Worker::current()->serve();
