<?php

/**
 * Tests of templates/php8/template.yaml and its Dockerfile as the control plane uses them: the
 * schema's keys, the check command run over a bundle's files, the run command and the image's
 * start command.
 */

declare(strict_types=1);

namespace EofaasTest;

final class TemplateTest extends TestCase
{
    private static function yaml(): string
    {
        return file_get_contents(TEMPLATE_DIR . '/template.yaml');
    }

    /** The value of a `key: [...]` line; the flow sequences of template.yaml are written as JSON. */
    private static function sequence(string $key): array
    {
        preg_match('/^\s*' . $key . ':\s*(\[.*\])\s*$/m', self::yaml(), $match);
        return json_decode($match[1] ?? 'null', true)
            ?? throw new AssertionFailed("no {$key} sequence");
    }

    public function testHasExactlyTheSchemaKeys(): void
    {
        preg_match_all('/^(\w+):/m', self::yaml(), $top);
        self::assertSame(
            ['name', 'language', 'description', 'handler', 'run', 'check', 'dependencies',
                'concurrency', 'image'],
            $top[1],
        );
        preg_match_all('/^  (\w+):/m', self::yaml(), $nested);
        self::assertSame(
            ['file', 'signature', 'command', 'extensions', 'manifest', 'directory', 'command'],
            $nested[1]
        );
        self::assertContains('name: php8', self::yaml());
        self::assertContains('file: handler.php', self::yaml());
    }

    public function testCheckCommandAcceptsValidFilesAndRejectsSyntaxErrors(): void
    {
        $bundle = $this->tempDir();
        mkdir("{$bundle}/function");
        $handler = "<?php\nfunction handle(Data \$data, Context \$ctx)\n{\n    return null;\n}\n";
        file_put_contents("{$bundle}/function/handler.php", $handler);
        file_put_contents("{$bundle}/function/helper.php", "<?php\nconst HELPER = 1;\n");
        self::assertSame(['.php'], self::sequence('extensions'));
        $command = self::sequence('command');
        $files = ['function/handler.php', 'function/helper.php'];
        [$status, $output] = self::run([...$command, ...$files], $bundle);
        self::assertSame(0, $status, $output);

        file_put_contents("{$bundle}/function/broken.php", "<?php\nfunction handle( {\n");
        file_put_contents("{$bundle}/function/also_broken.php", "<?php\n\$x = ;\n");
        $broken = ['function/broken.php', 'function/also_broken.php'];
        [$status, $output] = self::run([...$command, ...$files, ...$broken], $bundle);
        self::assertTrue($status !== 0, 'a syntax error fails the check');
        self::assertContains('syntax error', $output);
        self::assertContains('function/broken.php', $output); // every failing file is named
        self::assertContains('function/also_broken.php', $output);
    }

    public function testRunAndImageStartTheServer(): void
    {
        $run = self::sequence('run');
        self::assertSame(PHP, $run[0]);
        $script = TEMPLATE_DIR . '/' . end($run);
        self::assertTrue(is_file($script), 'the run script is in the template');
        $dockerfile = file_get_contents(TEMPLATE_DIR . '/Dockerfile');
        preg_match('/^CMD (.*)$/m', $dockerfile, $cmd);
        self::assertSame($run, json_decode($cmd[1], true));
        preg_match_all('/^COPY (\S+)/m', $dockerfile, $copies);
        self::assertSame(['.'], $copies[1]); // the bundle root: exists in every rendered bundle
        self::assertContains('USER 33:33', $dockerfile);
    }

    /** @return array{int, string} exit status and output (stdout and stderr) */
    private static function run(array $command, string $cwd): array
    {
        $process = proc_open($command, [1 => ['pipe', 'w'], 2 => ['redirect', 1]], $pipes, $cwd);
        $output = stream_get_contents($pipes[1]);
        fclose($pipes[1]);
        return [proc_close($process), $output];
    }
}
