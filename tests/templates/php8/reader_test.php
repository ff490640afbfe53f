<?php

/** Tests of the php8 template's cursor parsing and chunk reader (file:// and http://). */

declare(strict_types=1);

namespace EofaasTest;

use Cursor;
use Data;
use Eofaas\FieldError;
use ObjectChangedError;
use StorageError;

use function Eofaas\parseCursor;

/**
 * Files that stress line framing: empty lines, no final newline, lines longer than most chunks,
 * CRLF endings, nothing at all.
 *
 * @return array<string, string>
 */
function lineFiles(): array
{
    return [
        'simple' => "alpha\nbeta\ngamma\n",
        'no_final_newline' => "one\ntwo\nthree",
        'empty_lines' => "\n\na\n\n\nbb\n\n",
        'long_line' => "s\n" . str_repeat('x', 150) . "\nshort\n" . str_repeat('y', 90),
        'crlf' => "id,cc\r\nS2A_1,0.1\r\n\r\nS2B_2,0.9\r\n",
        'newline_only' => "\n",
        'empty' => '',
    ];
}

const NUMBERS = '0123456789';

/** @return list<string> */
function expectedLines(string $content): array
{
    $lines = explode("\n", $content);
    if (end($lines) === '') {
        array_pop($lines); // a final "\n" ends the last line rather than starting an empty one
    }
    return $lines;
}

/**
 * The cursors a planner would make: [0, c), [c, 2c), ...; the last one runs to the end.
 *
 * @return list<Cursor>
 */
function chunkCursors(string $uri, int $size, int $chunkSize, string $framing = 'LINES'): array
{
    $cursors = [];
    for ($offset = 0; $offset < max($size, 1); $offset += $chunkSize) {
        $length = $offset + $chunkSize >= $size ? null : $chunkSize;
        $cursors[] = new Cursor($uri, $offset, $length, $framing);
    }
    return $cursors;
}

function readAll(?Cursor $cursor, int $blockSize = \Eofaas\BLOCK_SIZE): string
{
    $data = new Data($cursor, 10.0, $blockSize);
    try {
        return $data->read();
    } finally {
        $data->close();
    }
}

/** @return list<string> */
function iterate(?Cursor $cursor, int $blockSize = \Eofaas\BLOCK_SIZE): array
{
    $data = new Data($cursor, 10.0, $blockSize);
    try {
        return iterator_to_array($data, false);
    } finally {
        $data->close();
    }
}

abstract class LinesTestCase extends TestCase
{
    /** Reads each of lineFiles() in LINES chunks of every size; every line must come out once. */
    protected static function assertLinesExactlyOnce(
        callable $uriFor,
        bool $checkIteration = true,
        int $blockSize = \Eofaas\BLOCK_SIZE,
    ): void {
        foreach (lineFiles() as $name => $content) {
            $uri = $uriFor($name, $content);
            for ($chunkSize = 1; $chunkSize <= strlen($content) + 1; $chunkSize++) {
                $context = "{$name}, chunk size {$chunkSize}, block size {$blockSize}:";
                $cursors = chunkCursors($uri, strlen($content), $chunkSize);
                $chunks = array_map(fn ($cursor) => readAll($cursor, $blockSize), $cursors);
                self::assertSame($content, implode('', $chunks), $context);
                $position = 0;
                foreach ($cursors as $i => $cursor) {
                    if ($chunks[$i] === '') {
                        continue;
                    }
                    $where = "{$context} chunk {$i}";
                    // The chunk starts with a line that starts inside its range ...
                    self::assertTrue($cursor->offset <= $position, "{$where} starts early");
                    $end = $cursor->end();
                    self::assertTrue($end === null || $position < $end, "{$where} starts late");
                    // ... and holds whole lines only.
                    $position += strlen($chunks[$i]);
                    $whole = str_ends_with($chunks[$i], "\n") || $position === strlen($content);
                    self::assertTrue($whole, "{$where} cuts a line");
                }
                if ($checkIteration) {
                    $lines = array_map(fn ($cursor) => iterate($cursor, $blockSize), $cursors);
                    self::assertSame(expectedLines($content), array_merge(...$lines), $context);
                }
            }
        }
    }
}

final class ParseCursorTest extends TestCase
{
    public function testAcceptsProto3JsonForms(): void
    {
        $json = '{"uri": "file:///d/a.txt", "offset": "12", "length": 30,'
            . ' "framing": "FRAMING_LINES", "part": "2", "parts": 4, "size": "1000",'
            . ' "etag": "\"e1\""}';
        $cursor = parseCursor(json_decode($json));
        self::assertSame([12, 30, 'LINES'], [$cursor->offset, $cursor->length, $cursor->framing]);
        self::assertSame(
            [2, 4, 1000, '"e1"'],
            [$cursor->part, $cursor->parts, $cursor->size, $cursor->etag],
        );
        self::assertSame(7, parseCursor(['uri' => 'file:///a', 'offset' => 7.0])->offset);
        $largest = parseCursor(['uri' => 'file:///a', 'size' => '009223372036854775807']);
        self::assertSame(PHP_INT_MAX, $largest->size);
    }

    public function testDefaults(): void
    {
        $cursor = parseCursor(['uri' => 'https://store.example/a']);
        self::assertSame([0, null, 'NONE'], [$cursor->offset, $cursor->length, $cursor->framing]);
    }

    public function testFramingSpellings(): void
    {
        $cases = [
            ['LINES', 'LINES'], [2, 'LINES'], ['lines', 'LINES'], ['FRAMING_LINES', 'LINES'],
            ['FRAMING_NONE', 'NONE'], ['NONE', 'NONE'], ['FRAMING_UNSPECIFIED', 'NONE'],
            [1, 'NONE'], [0, 'NONE'], [null, 'NONE'],
        ];
        foreach ($cases as [$framing, $expected]) {
            $cursor = parseCursor(['uri' => 'file:///a', 'framing' => $framing]);
            self::assertSame($expected, $cursor->framing, 'framing ' . export($framing));
        }
    }

    public function testErrorsNameTheField(): void
    {
        $cases = [
            [new \stdClass(), 'cursor.uri'],
            [['uri' => ''], 'cursor.uri'],
            [['uri' => 's3://bucket/key'], 'cursor.uri'],
            [['uri' => 'file://host/a'], 'cursor.uri'],
            [['uri' => 'http:///a'], 'cursor.uri'],
            [['uri' => 'file:///a', 'offset' => -1], 'cursor.offset'],
            [['uri' => 'file:///a', 'offset' => '12x'], 'cursor.offset'],
            [['uri' => 'file:///a', 'offset' => true], 'cursor.offset'],
            [['uri' => 'file:///a', 'offset' => 1.5], 'cursor.offset'],
            [['uri' => 'file:///a', 'offset' => '9223372036854775808'], 'cursor.offset'],
            [['uri' => 'file:///a', 'offset' => 1e19], 'cursor.offset'],
            [['uri' => 'file:///a', 'length' => '-5'], 'cursor.length'],
            [['uri' => 'file:///a', 'framing' => 'WORDS'], 'cursor.framing'],
            [['uri' => 'file:///a', 'framing' => true], 'cursor.framing'],
            [['uri' => 'file:///a', 'etag' => 5], 'cursor.etag'],
            [[], 'cursor'],
            ['file:///a', 'cursor'],
        ];
        foreach ($cases as [$object, $field]) {
            $parse = fn () => parseCursor($object);
            $error = self::assertThrows(FieldError::class, $parse, export($object));
            self::assertSame($field, $error->field, export($object));
        }
    }
}

final class FileReaderTest extends LinesTestCase
{
    private string $dir;

    public function setUp(): void
    {
        $this->dir = $this->tempDir();
    }

    private function write(string $name, string $content): string
    {
        $path = "{$this->dir}/{$name}";
        file_put_contents($path, $content);
        return 'file://' . implode('/', array_map('rawurlencode', explode('/', $path)));
    }

    public function testNoneRanges(): void
    {
        $uri = $this->write('numbers', NUMBERS);
        $cases = [
            [0, 4, '0123'], [3, 4, '3456'], [6, 4, '6789'], [8, 4, '89'], [10, 4, ''],
            [25, null, ''], [5, null, '56789'], [0, null, NUMBERS], [4, 0, ''],
        ];
        foreach ($cases as [$offset, $length, $expected]) {
            $chunk = readAll(new Cursor($uri, $offset, $length));
            self::assertSame($expected, $chunk, "[{$offset}, +{$length}]");
        }
    }

    public function testPartialReadsAndTell(): void
    {
        $data = new Data(new Cursor($this->write('numbers', NUMBERS), 1, 8));
        self::assertSame('123', $data->read(3));
        self::assertSame('', $data->read(0));
        self::assertSame(3, $data->tell());
        self::assertSame('45', $data->read(2));
        self::assertSame('678', $data->read());
        self::assertSame('', $data->read());
        self::assertSame(8, $data->tell());
        $data->close();
    }

    public function testReadAndIterationGoOnAfterEachOther(): void
    {
        $uri = $this->write('three', "alpha\nbeta\ngamma");
        $data = new Data(new Cursor($uri));
        self::assertSame('alp', $data->read(3));
        self::assertSame(['ha', 'beta', 'gamma'], iterator_to_array($data, false));
        self::assertSame(16, $data->tell());
        $data = new Data(new Cursor($uri));
        foreach ($data as $line) {
            self::assertSame('alpha', $line);
            break;
        }
        // The rest of the block the iteration read is still there.
        self::assertSame(6, $data->tell());
        self::assertSame("beta\ngamma", $data->read());
        self::assertSame(16, $data->tell());
    }

    public function testLinesReadsAndTellShareOnePositionWhateverTheBlockSize(): void
    {
        // Steps against a model of the chunk: alternately one line from a new iteration, left at
        // once, and a read of 1 to 3 bytes; tell() after each.
        foreach ([1, 3, 8, \Eofaas\BLOCK_SIZE] as $blockSize) {
            foreach (lineFiles() as $name => $content) {
                $data = new Data(new Cursor($this->write($name, $content)), 10.0, $blockSize);
                $position = 0;
                for ($step = 0; $position < strlen($content); $step++) {
                    $context = "{$name}, block size {$blockSize}, step {$step}:";
                    if ($step % 2 === 0) {
                        $newline = strpos($content, "\n", $position);
                        $end = $newline === false ? strlen($content) : $newline;
                        $line = substr($content, $position, $end - $position);
                        self::assertSame($line, $data->lines()->current(), $context);
                        $position = $newline === false ? $end : $newline + 1;
                    } else {
                        $size = 1 + $step % 3;
                        $bytes = substr($content, $position, $size);
                        self::assertSame($bytes, $data->read($size), $context);
                        $position += strlen($bytes);
                    }
                    self::assertSame($position, $data->tell(), $context);
                }
                self::assertSame([], iterator_to_array($data, false), $name);
                $data->close();
            }
        }
    }

    public function testPercentEncodedPath(): void
    {
        $uri = $this->write('scene list #1.txt', "a\n");
        self::assertContains('%20', $uri);
        self::assertSame("a\n", readAll(new Cursor($uri, 0, null, 'LINES')));
    }

    public function testEtagNamesTheVersionToRead(): void
    {
        $uri = $this->write('scene', NUMBERS);
        touch("{$this->dir}/scene", 1793021400);
        // The planner's form: mtime in ns, size, in hexadecimal; PHP sees the mtime to the second.
        $etag = '18e21776ad083d15-a';
        self::assertSame('234', readAll(new Cursor($uri, 2, 3, 'NONE', etag: $etag)));
        $this->write('scene', NUMBERS . "\n"); // rewritten since the cursor was made
        foreach ([['NONE', 3], ['LINES', 3], ['NONE', 0]] as [$framing, $length]) {
            $read = fn () => readAll(new Cursor($uri, 2, $length, $framing, etag: $etag));
            $error = self::assertThrows(ObjectChangedError::class, $read, "{$framing} +{$length}");
            self::assertContains($etag, $error->getMessage());
        }
        self::assertSame('234', readAll(new Cursor($uri, 2, 3, 'NONE'))); // no etag: not checked
    }

    public function testEtagOfAFileOlderThan1970(): void
    {
        $uri = $this->write('old', NUMBERS);
        touch("{$this->dir}/old", -315619200); // 1960-01-01
        // The planner's form for -315619200 s and 250 ns, which fstat rounds down to the second.
        $etag = '-' . dechex(315619199999999750) . '-a';
        self::assertSame('234', readAll(new Cursor($uri, 2, 3, 'NONE', etag: $etag)));
        $etag = '-' . dechex(315619201000000000) . '-a'; // a second earlier
        $read = fn () => readAll(new Cursor($uri, 2, 3, 'NONE', etag: $etag));
        self::assertThrows(ObjectChangedError::class, $read);
        $etag = dechex(315619200000000000) . '-a'; // the same time after 1970
        $read = fn () => readAll(new Cursor($uri, 2, 3, 'NONE', etag: $etag));
        self::assertThrows(ObjectChangedError::class, $read);
    }

    public function testMissingFileThrowsOnRead(): void
    {
        // Whatever the length: a chunk of no bytes still names an object that must exist.
        foreach ([null, 0] as $length) {
            $data = new Data(new Cursor('file:///nonexistent/eofaas/file.txt', 0, $length));
            $error = self::assertThrows(StorageError::class, fn () => $data->read());
            self::assertContains('No such file or directory', $error->getMessage());
        }
    }

    public function testLinesChunkEndingPastTheLargestInteger(): void
    {
        $uri = $this->write('simple', lineFiles()['simple']);
        self::assertSame(['beta', 'gamma'], iterate(new Cursor($uri, 3, PHP_INT_MAX, 'LINES')));
    }

    public function testNoCursorIsAnEmptyChunk(): void
    {
        self::assertSame('', readAll(null));
        self::assertSame([], iterate(null));
    }

    public function testIterationSplitsLines(): void
    {
        $uri = $this->write('crlf', lineFiles()['crlf']);
        $lines = ["S2A_1,0.1\r", "\r", "S2B_2,0.9\r"];
        self::assertSame(["id,cc\r", ...$lines], iterate(new Cursor($uri)));
        $data = new Data(new Cursor($uri));
        self::assertSame('id', $data->read(2)); // iteration goes on from where read() stopped
        self::assertSame([",cc\r", ...$lines], iterator_to_array($data->lines(), false));
    }

    public function testLinesExactlyOnceForEveryChunkSize(): void
    {
        self::assertLinesExactlyOnce(fn ($name, $content) => $this->write($name, $content));
    }

    public function testLinesExactlyOnceAcrossSmallBlocks(): void
    {
        // Tiny read blocks put line ends and the skipped partial line across block boundaries.
        foreach ([1, 3, 8] as $blockSize) {
            $uriFor = fn ($name, $content) => $this->write($name, $content);
            self::assertLinesExactlyOnce($uriFor, true, $blockSize);
        }
    }

    public function testALineLongerThanManyBlocksStaysWhole(): void
    {
        $longLine = str_repeat('L', 3 * \Eofaas\BLOCK_SIZE + 17);
        $content = "head\n{$longLine}\ntail\n";
        $uri = $this->write('huge', $content);
        $cursors = chunkCursors($uri, strlen($content), intdiv(\Eofaas\BLOCK_SIZE, 2));
        $chunks = array_map(fn ($cursor) => readAll($cursor), $cursors);
        self::assertTrue($chunks[0] === "head\n{$longLine}\n", 'the first chunk holds the line');
        self::assertTrue(implode('', $chunks) === $content, 'the chunks make up the file');
        $lines = array_merge(...array_map(fn ($cursor) => iterate($cursor), $cursors));
        self::assertTrue($lines === ['head', $longLine, 'tail'], 'lines of the file');
    }

    public function testLinesChunkThatStartsAtALineStart(): void
    {
        $uri = $this->write('simple', "ab\ncd\nef\n");
        // Byte offset-1 is "\n": the line starting at offset is ours, nothing is dropped.
        self::assertSame("cd\n", readAll(new Cursor($uri, 3, 1, 'LINES')));
        // Offset inside "cd": that line belongs to the previous chunk; "ef" starts at 6, outside.
        self::assertSame('', readAll(new Cursor($uri, 4, 2, 'LINES')));
        self::assertSame("ef\n", readAll(new Cursor($uri, 4, 3, 'LINES')));
        self::assertSame('', readAll(new Cursor($uri, 0, 0, 'LINES')));
    }
}

final class HttpReaderTest extends LinesTestCase
{
    private static string $root;
    private static FileServer $server;
    private static FileServer $plainServer;

    public static function setUpClass(): void
    {
        self::$root = makeTempDir();
        foreach (lineFiles() + ['numbers' => NUMBERS] as $name => $content) {
            file_put_contents(self::$root . "/{$name}", $content);
        }
        self::$server = new FileServer(self::$root);
        self::$plainServer = new FileServer(self::$root, false);
    }

    public static function tearDownClass(): void
    {
        self::$server->stop();
        self::$plainServer->stop();
        removeTree(self::$root);
    }

    public function testNoneRanges(): void
    {
        foreach ([self::$server, self::$plainServer] as $server) {
            $uri = $server->url('/numbers');
            $cases = [
                [0, 4, '0123'], [3, 4, '3456'], [8, 4, '89'], [10, 4, ''], [25, null, ''],
                [5, null, '56789'],
            ];
            foreach ($cases as [$offset, $length, $expected]) {
                $chunk = readAll(new Cursor($uri, $offset, $length));
                self::assertSame($expected, $chunk, "{$uri} [{$offset}, +{$length}]");
            }
        }
    }

    public function testRangeHeaders(): void
    {
        self::$server->takeRanges();
        readAll(new Cursor(self::$server->url('/numbers'), 2, 3, 'NONE'));
        readAll(new Cursor(self::$server->url('/numbers'), 2, 3, 'LINES'));
        // LINES reads past the chunk's end until its last line ends, so the range is open.
        self::assertSame(['bytes=2-4', 'bytes=1-'], self::$server->takeRanges());
    }

    public function testLinesExactlyOnceForEveryChunkSize(): void
    {
        // Iteration shares the reader with read(); the file tests cover it.
        self::assertLinesExactlyOnce(fn ($name) => self::$server->url("/{$name}"), false);
    }

    public function testLinesExactlyOnceWhenTheServerIgnoresRange(): void
    {
        self::assertLinesExactlyOnce(fn ($name) => self::$plainServer->url("/{$name}"), false);
    }

    public function testHttpErrorThrowsOnRead(): void
    {
        foreach ([null, 0] as $length) {
            $data = new Data(new Cursor(self::$server->url('/missing'), 0, $length));
            $error = self::assertThrows(StorageError::class, fn () => $data->read());
            self::assertSame(404, $error->getCode());
            self::assertContains('HTTP 404', $error->getMessage());
        }
    }

    public function testShortBodyIsAnError(): void
    {
        $data = new Data(new Cursor(self::$server->url('/truncated')));
        $error = self::assertThrows(StorageError::class, fn () => $data->read());
        self::assertContains('after 10 of 100 bytes', $error->getMessage());
    }

    public function testUnreachableServerThrowsOnRead(): void
    {
        $data = new Data(new Cursor('http://127.0.0.1:1/numbers'), 2.0);
        self::assertThrows(StorageError::class, fn () => $data->read());
    }
}
