<?php

/**
 * Test runner of the php8 template: runs every test* method of the TestCase classes in the
 * *_test.php files beside it and ends with "N passed, M failed" (exit status 1 on a failure).
 *
 * Usage (from the repository root): /usr/bin/php tests/templates/php8/run_tests.php [FILTER]
 * FILTER keeps the tests whose "Class::method" name contains it.
 */

declare(strict_types=1);

namespace EofaasTest;

require_once __DIR__ . '/support.php';

error_reporting(E_ALL);
ini_set('display_errors', 'stderr');
set_error_handler(static function (int $severity, string $message, string $file, int $line): bool {
    if ((error_reporting() & $severity) === 0) {
        return false;
    }
    throw new \ErrorException($message, 0, $severity, $file, $line);
});

foreach (glob(__DIR__ . '/*_test.php') as $file) {
    require_once $file;
}
$filter = $argv[1] ?? '';
$passed = 0;
$failed = 0;
$started = hrtime(true);
foreach (get_declared_classes() as $class) {
    $reflection = new \ReflectionClass($class);
    if (!$reflection->isSubclassOf(TestCase::class) || $reflection->isAbstract()) {
        continue;
    }
    $selected = fn ($method) => str_starts_with($method->name, 'test')
        && str_contains("{$reflection->getShortName()}::{$method->name}", $filter);
    $tests = array_filter($reflection->getMethods(\ReflectionMethod::IS_PUBLIC), $selected);
    if ($tests === []) {
        continue;
    }
    try {
        $class::setUpClass();
    } catch (\Throwable $error) {
        echo "FAIL {$reflection->getShortName()}::setUpClass\n  {$error}\n";
        $failed += count($tests);
        continue;
    }
    foreach ($tests as $method) {
        $name = "{$reflection->getShortName()}::{$method->name}";
        $testStarted = hrtime(true);
        $test = new $class();
        $error = null;
        try {
            $test->setUp();
            $test->{$method->name}();
        } catch (\Throwable $thrown) {
            $error = $thrown;
        }
        try {
            $test->tearDown();
            $test->runCleanups();
        } catch (\Throwable $thrown) {
            $error ??= $thrown;
        }
        $ms = intdiv(hrtime(true) - $testStarted, 1_000_000);
        if ($error === null) {
            $passed++;
            echo "ok   {$name} ({$ms} ms)\n";
        } else {
            $failed++;
            $detail = (string) $error;
            if ($error instanceof AssertionFailed) {
                $where = $error->getTrace()[0] ?? [];
                $line = basename($where['file'] ?? '') . ':' . ($where['line'] ?? '?');
                $detail = "{$error->getMessage()} ({$line})";
            }
            echo "FAIL {$name} ({$ms} ms)\n  {$detail}\n";
        }
    }
    $class::tearDownClass();
}
$seconds = round((hrtime(true) - $started) / 1e9, 1);
echo "php8 template tests in {$seconds} s\n";
echo "{$passed} passed, {$failed} failed\n";
exit($failed === 0 && $passed > 0 ? 0 : 1);
