<?php

/**
 * Tests of the php8 template's replica server, started as a real process and spoken to over HTTP
 * exactly as the proxy does.
 */

declare(strict_types=1);

namespace EofaasTest;

/** One handler with behaviours picked by args->mode, so one replica serves most tests. */
const HANDLER = <<<'PHP'
    <?php

    require_once 'helper.php'; // another file of the function, found on the include path

    class BadScene extends FunctionError
    {
    }

    $loadedBy = 'handler.php'; // top-level variables are globals, as in any PHP script

    function handle(Data $data, Context $ctx): mixed
    {
        global $loadedBy;
        $mode = $ctx->args->mode ?? 'read';
        switch ($mode) {
            case 'read':
                return $data->read();
            case 'lines':
                return iterator_to_array($data, false);
            case 'ctx':
                return ['id' => $ctx->id, 'args' => $ctx->args, 'attempt' => $ctx->attempt,
                    'deadline_ms' => $ctx->deadlineMs, 'remaining_ms' => $ctx->remainingMs(),
                    'function' => $ctx->function, 'part' => $ctx->cursor?->part,
                    'same_cursor' => $ctx->cursor === $data->cursor, 'helper' => HELPER_VALUE,
                    'global' => $loadedBy];
            case 'text':
                return "h\u{e9}llo";
            case 'none':
                return null;
            case 'pid':
                return getmypid();
            case 'handled':
                throw new BadScene('row 3 has no date');
            case 'unhandled':
                throw new OutOfRangeException('cloud_cover');
            case 'warning':
                return $ctx->args->no_such_arg;
            case 'exit':
                exit(3);
            case 'crash':
                posix_kill(getmypid(), SIGKILL);
                return null;
            case 'block':
                // Tell the test we are in, then wait until it lets us go (or the replica is gone).
                $parent = posix_getppid();
                touch("{$ctx->args->dir}/entered-{$ctx->id}");
                while (!file_exists("{$ctx->args->dir}/release") && posix_getppid() === $parent) {
                    usleep(2000);
                }
                return 'released';
        }
        throw new ValueError("unknown mode {$mode}");
    }
    PHP;

function makeFunction(string $dir, string $handler = HANDLER): void
{
    file_put_contents("{$dir}/handler.php", $handler);
    file_put_contents("{$dir}/helper.php", "<?php\nconst HELPER_VALUE = 42;\n");
}

/** Starts invocations in the 'block' mode, each on its own connection, and releases them. */
final class Blocker
{
    /** @var array<string, HttpClient> */
    private array $clients = [];

    public function __construct(private readonly Replica $replica, private readonly string $dir)
    {
    }

    public function start(string $id): void
    {
        $client = $this->replica->client();
        $args = ['mode' => 'block', 'dir' => $this->dir];
        $client->send('POST', '/invoke', encode(['id' => $id, 'args' => $args]));
        $this->clients[$id] = $client;
        waitUntil(fn () => file_exists("{$this->dir}/entered-{$id}"), "invocation {$id} to start");
    }

    /** @return array<string, Response> */
    public function release(): array
    {
        touch("{$this->dir}/release");
        $responses = [];
        foreach ($this->clients as $id => $client) {
            $responses[$id] = $client->receive();
            $client->close();
        }
        $this->clients = [];
        return $responses;
    }
}

abstract class ReplicaTestCase extends TestCase
{
    protected string $dir;

    public function setUp(): void
    {
        $this->dir = $this->tempDir();
    }

    protected function startReplica(
        string $handler = HANDLER,
        array $env = [],
        array $phpOptions = [],
    ): Replica {
        makeFunction($this->dir, $handler);
        $replica = new Replica($this->dir, $env, $phpOptions);
        $this->addCleanup(function () use ($replica) {
            touch("{$this->dir}/release");
            $replica->stop();
        });
        return $replica;
    }
}

/** Behaviour of a running replica, shared by the tests of this class. */
final class InvokeTest extends TestCase
{
    private const CONTENT = "S2A_001,2024-03-01,12.5\nS2B_002,2024-03-02,80.0\n"
        . "L8_003,2024-03-03,3.1\n";

    private static string $dir;
    private static Replica $replica;
    private static string $uri;

    public static function setUpClass(): void
    {
        self::$dir = makeTempDir();
        makeFunction(self::$dir);
        self::$replica = (new Replica(self::$dir))->waitHealthy();
        file_put_contents(self::$dir . '/scenes.csv', self::CONTENT);
        self::$uri = 'file://' . self::$dir . '/scenes.csv';
    }

    public static function tearDownClass(): void
    {
        self::$replica->stop();
        removeTree(self::$dir);
    }

    public function testHealthz(): void
    {
        $response = self::$replica->request('GET', '/healthz');
        self::assertSame([200, 'ok'], [$response->status, $response->body]);
        self::assertSame('text/plain; charset=utf-8', $response->header('Content-Type'));
        $head = self::$replica->request('HEAD', '/healthz');
        $length = $head->header('Content-Length');
        self::assertSame([200, '', '2'], [$head->status, $head->body, $length]);
    }

    public function testInvokeReturnsTheChunkBytes(): void
    {
        $cursor = ['uri' => self::$uri, 'offset' => '4', 'length' => '10'];
        $response = self::$replica->invoke(['cursor' => $cursor]);
        self::assertSame(200, $response->status);
        self::assertSame(substr(self::CONTENT, 4, 10), $response->body);
        self::assertSame('application/octet-stream', $response->header('Content-Type'));
        self::assertSame(null, $response->functionError());
    }

    public function testInvokeLinesFraming(): void
    {
        // [30, 50) starts inside the second line (24..47), which belongs to the previous chunk,
        // and holds the start of the third (48).
        $response = self::$replica->invoke([
            'cursor' => [
                'uri' => self::$uri, 'offset' => 30, 'length' => 20, 'framing' => 'FRAMING_LINES',
            ],
            'args' => ['mode' => 'lines'],
        ]);
        self::assertSame(['L8_003,2024-03-03,3.1'], $response->json());
    }

    public function testInvokeOverHttp(): void
    {
        $server = new FileServer(self::$dir);
        $this->addCleanup(fn () => $server->stop());
        $cursor = ['uri' => $server->url('/scenes.csv'), 'offset' => 1, 'framing' => 'LINES'];
        $response = self::$replica->invoke(['cursor' => $cursor, 'args' => ['mode' => 'lines']]);
        self::assertSame(['S2B_002,2024-03-02,80.0', 'L8_003,2024-03-03,3.1'], $response->json());
    }

    public function testContextRoundTrip(): void
    {
        $args = [
            'mode' => 'ctx', 'threshold' => 0.5, 'bands' => ['B04', 'B08'],
            'nested' => ['cloud' => 1.0],
        ];
        $response = self::$replica->invoke([
            'id' => 'inv-1', 'args' => $args, 'attempt' => 2, 'deadline_ms' => '5000',
            'cursor' => ['uri' => self::$uri, 'part' => '3', 'parts' => '8'],
        ]);
        self::assertSame(200, $response->status);
        self::assertSame('application/json', $response->header('Content-Type'));
        $ctx = $response->json();
        self::assertSame($args, $ctx['args']);
        self::assertContains('"cloud":1.0', $response->body); // floats keep their fraction
        self::assertSame(['inv-1', 2, 'test-fn'], [$ctx['id'], $ctx['attempt'], $ctx['function']]);
        self::assertSame(
            [3, true, 42, 'handler.php'],
            [$ctx['part'], $ctx['same_cursor'], $ctx['helper'], $ctx['global']],
        );
        self::assertSame(5000, $ctx['deadline_ms']);
        $remaining = $ctx['remaining_ms'];
        self::assertTrue($remaining > 0 && $remaining <= 5000, "remaining_ms {$remaining}");
    }

    public function testArgsComeBackAsTheSameJson(): void
    {
        // Objects stay objects, even empty or keyed "0", "1", and lists stay lists.
        $args = '{"mode":"ctx","filters":{},"bands":[],"tiles":{"0":"31UFT","1":"31UGT"},'
            . '"nested":{"extra":{},"list":[{},[]]}}';
        $response = self::$replica->request('POST', '/invoke', "{\"args\": {$args}}");
        self::assertSame(200, $response->status);
        self::assertContains("\"args\":{$args},", $response->body);
    }

    public function testNoDeadlineAndNoCursor(): void
    {
        $ctx = self::$replica->invoke(['args' => ['mode' => 'ctx']])->json();
        $fields = [$ctx['deadline_ms'], $ctx['remaining_ms'], $ctx['part']];
        self::assertSame([null, null, null], $fields);
        self::assertSame('', self::$replica->invoke()->body);
        self::assertSame('', self::$replica->request('POST', '/invoke')->body); // no body at all
    }

    public function testResultConversions(): void
    {
        $text = self::$replica->invoke(['args' => ['mode' => 'text']]);
        self::assertSame("h\u{e9}llo", $text->body);
        self::assertSame('application/octet-stream', $text->header('Content-Type'));
        $empty = self::$replica->invoke(['args' => ['mode' => 'none']]);
        self::assertSame(
            [200, '', '0', null],
            [
                $empty->status, $empty->body,
                $empty->header('Content-Length'), $empty->header('Content-Type'),
            ],
        );
        $number = self::$replica->invoke(['args' => ['mode' => 'pid']]);
        self::assertSame('application/json', $number->header('Content-Type'));
    }

    public function testHandledFunctionError(): void
    {
        $response = self::$replica->invoke(['args' => ['mode' => 'handled']]);
        self::assertSame(200, $response->status);
        self::assertSame('handled', $response->functionError());
        $error = ['type' => 'BadScene', 'message' => 'row 3 has no date'];
        self::assertSame(['error' => $error], $response->json());
    }

    public function testUnhandledFunctionError(): void
    {
        $response = self::$replica->invoke(['id' => 'boom-1', 'args' => ['mode' => 'unhandled']]);
        self::assertSame(200, $response->status);
        self::assertSame('unhandled', $response->functionError());
        $error = ['type' => 'OutOfRangeException', 'message' => 'cloud_cover'];
        self::assertSame($error, $response->error());
        $traced = fn () => str_contains(
            self::$replica->stderr(),
            'OutOfRangeException: cloud_cover',
        );
        waitUntil($traced, 'the trace on stderr');
        self::assertContains('invocation "boom-1" failed', self::$replica->stderr());
    }

    public function testWarningsAreUnhandledErrors(): void
    {
        $response = self::$replica->invoke(['args' => ['mode' => 'warning']]);
        self::assertSame('unhandled', $response->functionError());
        self::assertSame('ErrorException', $response->error()['type']);
        self::assertContains('no_such_arg', $response->error()['message']);
    }

    public function testReadingErrorIsAFunctionError(): void
    {
        $cursor = ['uri' => 'file:///nonexistent/eofaas/data.csv'];
        $response = self::$replica->invoke(['cursor' => $cursor]);
        self::assertSame('unhandled', $response->functionError());
        self::assertSame('StorageError', $response->error()['type']);
    }

    public function testBadRequestsNameTheField(): void
    {
        $uri = self::$uri;
        $cases = [
            ['{not json', 'body'],
            ['[1, 2]', 'body'],
            ['"text"', 'body'],
            ["{\"id\": \"\xff\"}", 'body'],
            ['{"id": 5}', 'id'],
            ['{"cursor": {"uri": "s3://bucket/key"}}', 'cursor.uri'],
            ['{"cursor": {"offset": 3}}', 'cursor.uri'],
            ['{"cursor": "file:///a"}', 'cursor'],
            ["{\"cursor\": {\"uri\": \"{$uri}\", \"offset\": \"-1\"}}", 'cursor.offset'],
            [
                "{\"cursor\": {\"uri\": \"{$uri}\", \"offset\": 99999999999999999999}}",
                'cursor.offset',
            ],
            ["{\"cursor\": {\"uri\": \"{$uri}\", \"framing\": \"X\"}}", 'cursor.framing'],
            ['{"args": [1]}', 'args'],
            ['{"args": "x"}', 'args'],
            ['{"deadline_ms": "soon"}', 'deadline_ms'],
            ['{"attempt": -1}', 'attempt'],
        ];
        foreach ($cases as [$body, $field]) {
            $response = self::$replica->request('POST', '/invoke', $body);
            self::assertSame(400, $response->status, $body);
            self::assertSame('InvalidArgument', $response->error()['type'], $body);
            self::assertSame($field, $response->error()['field'], $body);
            self::assertContains($field, $response->error()['message'], $body);
        }
    }

    public function testUnknownPathAndWrongMethod(): void
    {
        $notFound = self::$replica->request('GET', '/nope');
        self::assertSame([404, 'NotFound'], [$notFound->status, $notFound->error()['type']]);
        $wrong = self::$replica->request('GET', '/invoke');
        self::assertSame([405, 'POST'], [$wrong->status, $wrong->header('Allow')]);
        $postHealthz = self::$replica->request('POST', '/healthz', '');
        self::assertSame('GET, HEAD', $postHealthz->header('Allow'));
        self::assertSame(405, self::$replica->request('DELETE', '/invoke')->status);
        self::assertSame(200, self::$replica->request('GET', '/healthz?verbose=1')->status);
    }

    public function testKeepAliveReusesTheConnection(): void
    {
        $client = self::$replica->client();
        $this->addCleanup(fn () => $client->close());
        self::assertSame('ok', $client->request('GET', '/healthz')->body);
        $body = encode(['cursor' => ['uri' => self::$uri, 'length' => 7]]);
        self::assertSame('S2A_001', $client->request('POST', '/invoke', $body)->body);
        self::assertSame(404, $client->request('POST', '/nope', 'ignored body')->status);
        self::assertSame(405, $client->request('GET', '/invoke')->status);
        self::assertSame('ok', $client->request('GET', '/healthz')->body);
    }

    public function testPipelinedRequestsAreAnsweredInOrder(): void
    {
        $client = self::$replica->client();
        $this->addCleanup(fn () => $client->close());
        $invoke = encode(['cursor' => ['uri' => self::$uri, 'length' => 3]]);
        $length = strlen($invoke);
        $client->sendRaw("POST /invoke HTTP/1.1\r\nContent-Length: {$length}\r\n\r\n{$invoke}"
            . "GET /healthz HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\n\r\n");
        self::assertSame('S2A', $client->receive()->body);
        self::assertSame('ok', $client->receive()->body);
        self::assertSame(404, $client->receive()->status);
    }

    public function testChunkedRequestBody(): void
    {
        $client = self::$replica->client();
        $this->addCleanup(fn () => $client->close());
        $body = encode(['cursor' => ['uri' => self::$uri, 'length' => 3]]);
        [$first, $second] = [substr($body, 0, 10), substr($body, 10)];
        $client->sendRaw("POST /invoke HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
            . dechex(strlen($first)) . ";ext=1\r\n{$first}\r\n");
        usleep(20000); // the rest arrives later
        $client->sendRaw(dechex(strlen($second)) . "\r\n{$second}\r\n0\r\nX-Trailer: t\r\n\r\n");
        self::assertSame('S2A', $client->receive()->body);
        self::assertSame('ok', $client->request('GET', '/healthz')->body);
    }

    public function testExpectContinue(): void
    {
        $client = self::$replica->client();
        $this->addCleanup(fn () => $client->close());
        $body = encode(['cursor' => ['uri' => self::$uri, 'length' => 3]]);
        $length = strlen($body);
        $client->sendRaw(
            "POST /invoke HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: {$length}\r\n\r\n",
        );
        self::assertSame(100, $client->receive(true)->status);
        $client->sendRaw($body);
        self::assertSame('S2A', $client->receive()->body);
    }

    public function testBodyLimitsCloseTheConnection(): void
    {
        $client = self::$replica->client();
        $this->addCleanup(fn () => $client->close());
        $tooLarge = ['Content-Length' => (string) (16 * 1024 * 1024 + 1)];
        $response = $client->request('POST', '/invoke', null, $tooLarge);
        self::assertSame([413, 'body'], [$response->status, $response->error()['field']]);
        self::assertSame('close', $response->header('Connection'));
        self::assertTrue($client->closedByServer(), 'the connection is closed');

        $invalid = self::$replica->request('POST', '/invoke', null, ['Content-Length' => 'ten']);
        self::assertSame([400, 'Content-Length'], [$invalid->status, $invalid->error()['field']]);
    }

    public function testMalformedRequests(): void
    {
        $cases = [
            "NONSENSE\r\n\r\n" => 400,
            "GET /healthz HTTP/2.0\r\n\r\n" => 505,
            "GET /healthz HTTP/1.1\r\nno colon\r\n\r\n" => 400,
        ];
        foreach ($cases as $raw => $status) {
            $client = self::$replica->client();
            $client->sendRaw($raw);
            self::assertSame($status, $client->receive()->status, $raw);
            self::assertTrue($client->closedByServer(), "closed after {$raw}");
            $client->close();
        }
    }

    public function testHttp10ClosesUnlessKeepAlive(): void
    {
        $client = self::$replica->client();
        $client->sendRaw("GET /healthz HTTP/1.0\r\n\r\n");
        self::assertSame('close', $client->receive()->header('Connection'));
        self::assertTrue($client->closedByServer(), 'HTTP/1.0 closes by default');
        $client->close();
        $client = self::$replica->client();
        $this->addCleanup(fn () => $client->close());
        $client->sendRaw("GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        self::assertSame('keep-alive', $client->receive()->header('Connection'));
        self::assertSame('ok', $client->request('GET', '/healthz')->body);
    }
}

final class ConcurrencyTest extends ReplicaTestCase
{
    public function testBeyondTheLimitIsRefusedAtOnce(): void
    {
        $replica = $this->startReplica(env: ['EOFAAS_CONCURRENCY' => '2'])->waitHealthy();
        $blocker = new Blocker($replica, $this->dir);
        $blocker->start('a');
        $blocker->start('b'); // both run at once: each entered before either was released
        $started = microtime(true);
        $refused = $replica->invoke(['args' => ['mode' => 'none']]);
        self::assertSame([429, 'ResourceExhausted'], [$refused->status, $refused->error()['type']]);
        self::assertTrue(microtime(true) - $started < 1.0, 'refused without waiting');
        self::assertSame(200, $replica->request('GET', '/healthz')->status); // answered while full
        $responses = $blocker->release();
        self::assertSame(['released', 'released'], [$responses['a']->body, $responses['b']->body]);
        self::assertSame(200, $replica->invoke(['args' => ['mode' => 'none']])->status);
    }

    public function testExitInAHandlerIsAFunctionErrorAndTheWorkerIsReplaced(): void
    {
        $replica = $this->startReplica(env: ['EOFAAS_CONCURRENCY' => '1'])->waitHealthy();
        $open = $replica->client(); // a connection open while the new worker is forked
        $this->addCleanup(fn () => $open->close());
        $askPid = encode(['args' => ['mode' => 'pid']]);
        $pid = $open->request('POST', '/invoke', $askPid)->body;
        $response = $replica->invoke(['id' => 'quits', 'args' => ['mode' => 'exit']]);
        self::assertSame([200, 'unhandled'], [$response->status, $response->functionError()]);
        self::assertSame(['type' => 'Exit', 'message' => 'exit() was called'], $response->error());
        $next = waitUntil(function () use ($replica) {
            $response = $replica->invoke(['args' => ['mode' => 'pid']]);
            return $response->status === 200 ? $response : null;
        }, 'a new worker');
        self::assertTrue($next->body !== $pid, 'a new worker process serves');
        // The new worker closed its copy of the open connection; the supervisor's still works.
        self::assertSame($next->body, $open->request('POST', '/invoke', $askPid)->body);
        $open->sendRaw("GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n");
        self::assertSame('ok', $open->receive()->body);
        self::assertTrue($open->closedByServer(), 'Connection: close still closes the connection');
        self::assertContains('invocation "quits" ended the worker', $replica->stderr());
    }

    public function testAWorkerKilledMidInvocationIsAFunctionError(): void
    {
        $replica = $this->startReplica(env: ['EOFAAS_CONCURRENCY' => '1'])->waitHealthy();
        $response = $replica->invoke(['args' => ['mode' => 'crash']]);
        self::assertSame([200, 'unhandled'], [$response->status, $response->functionError()]);
        self::assertSame('WorkerExited', $response->error()['type']);
        self::assertContains('killed by signal 9', $response->error()['message']);
        $served = fn () => $replica->invoke(['args' => ['mode' => 'none']])->status === 200;
        waitUntil($served, 'a new worker');
        self::assertSame(200, $replica->request('GET', '/healthz')->status);
    }
}

final class LifecycleTest extends ReplicaTestCase
{
    public function testSigtermDrainsInFlightWork(): void
    {
        $replica = $this->startReplica()->waitHealthy();
        $idle = $replica->client(); // a keep-alive connection open before the drain
        $this->addCleanup(fn () => $idle->close());
        self::assertSame(200, $idle->request('GET', '/healthz')->status);
        $blocker = new Blocker($replica, $this->dir);
        $blocker->start('slow');
        $replica->signal(SIGTERM);
        waitUntil(fn () => $replica->request('GET', '/healthz')->status === 503, 'draining');
        self::assertSame('draining', $replica->request('GET', '/healthz')->body);
        $refused = $replica->invoke(['args' => ['mode' => 'none']]);
        self::assertSame([503, 'Unavailable'], [$refused->status, $refused->error()['type']]);
        $onIdle = $idle->request('POST', '/invoke', '{}');
        self::assertSame([503, 'close'], [$onIdle->status, $onIdle->header('Connection')]);
        self::assertSame(null, $replica->poll()); // still waiting for the slow invocation
        $slow = $blocker->release()['slow'];
        self::assertSame([200, 'released'], [$slow->status, $slow->body]);
        self::assertSame(0, $replica->wait());
        self::assertContains('SIGTERM, draining', $replica->stderr());
        self::assertContains('drained', $replica->stderr());
    }

    public function testServesWithoutAnyIniFile(): void
    {
        // The local sandbox does not expose /etc/php: PHP then loads no ini file, and Debian's
        // shared modules (posix among them) are not enabled.
        $replica = $this->startReplica(env: ['EOFAAS_CONCURRENCY' => '1'], phpOptions: ['-n']);
        $replica->waitHealthy();
        $blocker = new Blocker($replica, $this->dir);
        $blocker->start('slow');
        self::assertSame(429, $replica->invoke()->status);
        self::assertSame('released', $blocker->release()['slow']->body);
        $replica->signal(SIGTERM);
        self::assertSame(0, $replica->wait());
    }

    public function testSigintWithNothingInFlightExitsZero(): void
    {
        $replica = $this->startReplica()->waitHealthy();
        $replica->signal(SIGINT);
        self::assertSame(0, $replica->wait());
    }

    public function testDrainTimeoutBoundsTheWait(): void
    {
        $replica = $this->startReplica(env: ['EOFAAS_DRAIN_TIMEOUT_MS' => '50'])->waitHealthy();
        $blocker = new Blocker($replica, $this->dir);
        $blocker->start('stuck');
        $replica->signal(SIGTERM);
        self::assertSame(0, $replica->wait());
        self::assertContains('drain timeout', $replica->stderr());
    }

    public function testUnhealthyWhileTheHandlerLoads(): void
    {
        $gate = "{$this->dir}/loaded";
        $wait = "while (!file_exists('{$gate}')) {\n    usleep(2000);\n}\n";
        $slowLoad = str_replace("<?php\n", "<?php\n{$wait}", HANDLER);
        $replica = $this->startReplica($slowLoad)->waitListening();
        $health = $replica->request('GET', '/healthz');
        self::assertSame([503, 'starting'], [$health->status, $health->body]);
        self::assertSame(503, $replica->invoke()->status);
        touch($gate);
        $replica->waitHealthy();
        self::assertSame(200, $replica->invoke(['args' => ['mode' => 'none']])->status);
    }

    public function testLoadFailureExitsNonZero(): void
    {
        $cases = [
            "<?php\nthrow new RuntimeException('bad band config');\n"
                => 'RuntimeException: bad band config',
            "<?php\nfunction handle(\$data, \$ctx) {\n" => 'ParseError',
            "<?php\nfunction handler(\$data, \$ctx) { return null; }\n" => 'does not define handle',
            "<?php\nexit(0);\n" => 'exit() was called',
            "<?php\nfunction handle() {}\nfunction handle() {}\n" => 'Cannot redeclare',
        ];
        foreach ($cases as $handler => $expected) {
            $replica = $this->startReplica($handler);
            self::assertSame(1, $replica->wait(), $expected);
            self::assertContains('cannot load the handler from', $replica->stderr());
            self::assertContains($expected, $replica->stderr());
        }
    }

    public function testInvalidSettingsExit(): void
    {
        $replica = $this->startReplica(env: ['EOFAAS_CONCURRENCY' => '0']);
        self::assertSame(2, $replica->wait());
        self::assertContains('EOFAAS_CONCURRENCY must be an integer', $replica->stderr());
    }
}
