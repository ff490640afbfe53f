<?php

/**
 * The requirements of a function's composer.json, met at build time (see install_composer.php).
 *
 * "php" and "ext-*" are checked against this interpreter. Packages already in function/vendor
 * (shipped with the function) are kept; otherwise, when composer is installed, `composer install
 * --no-dev` runs in a scratch directory, without scripts or plugins, and its vendor/ replaces
 * function/vendor (the handler requires vendor/autoload.php). The last line of a failure names the
 * manifest and what is missing.
 *
 * A constraint is checked when it is "*" or versions with ^, ~, comparisons and .* wildcards,
 * joined by spaces or commas (all) and | or || (any). Anything else is left to composer.
 */

declare(strict_types=1);

namespace EofaasBuild;

final class Constraint
{
    /** [major, minor, patch] and how many of them were written, for "8", "8.2" or "v8.2.7". */
    public static function parse(string $version): ?array
    {
        if (!preg_match('/^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?$/', $version, $match)) {
            return null;
        }
        $parts = array_map('intval', array_slice($match, 1));
        return [array_pad($parts, 3, 0), count($parts)];
    }

    /** Whether $version (null: not a plain version) meets $constraint. */
    public static function satisfied(?string $version, string $constraint): bool
    {
        [$installed] = self::parse((string) $version) ?? [null];
        if ($installed === null) {
            return trim($constraint) === '*';
        }
        foreach (preg_split('/\s*\|\|?\s*/', trim($constraint)) as $alternative) {
            $clauses = preg_split('/\s*,\s*|\s+/', $alternative);
            $failed = array_filter($clauses, fn (string $c): bool => !self::holds($installed, $c));
            if ($failed === []) {
                return true;
            }
        }
        return false;
    }

    private static function holds(array $installed, string $clause): bool
    {
        if ($clause === '*') {
            return true;
        }
        if (!preg_match('/^(\^|~|>=|<=|>|<|!=|==?)?(v?[\d.]+?)(\.\*)?$/', $clause, $match)) {
            return false;
        }
        [$wanted, $written] = self::parse($match[2]) ?? [null, 0];
        if ($wanted === null) {
            return false;
        }
        if (($match[3] ?? '') !== '') { // 8.2.*: the same leading components
            $same = array_slice($installed, 0, $written) === array_slice($wanted, 0, $written);
            return $match[1] === '' && $same;
        }
        $order = $installed <=> $wanted;
        $firstNonZero = array_key_first(array_filter(array_slice($wanted, 0, $written)));
        return match ($match[1]) {
            // ^1.2 is <2.0.0 and ^0.3 is <0.4.0; ~1.2 is <2.0.0 and ~1.2.3 is <1.3.0.
            '^' => $order >= 0 && $installed < self::bump($wanted, $firstNonZero ?? $written - 1),
            '~' => $order >= 0 && $installed < self::bump($wanted, max($written - 2, 0)),
            '>=' => $order >= 0,
            '>' => $order > 0,
            '<=' => $order <= 0,
            '<' => $order < 0,
            '!=' => $order !== 0,
            default => $order === 0,
        };
    }

    /** The version after $version with component $i raised: the upper bound of ^ and ~. */
    private static function bump(array $version, int $i): array
    {
        $bumped = array_slice($version, 0, $i);
        $bumped[] = $version[$i] + 1;
        return array_pad($bumped, 3, 0);
    }
}

/** Whether $name at $constraint is met by this interpreter or by the packages in $vendor. */
function present(string $name, string $constraint, string $vendor): bool
{
    if ($name === 'php') {
        $version = PHP_MAJOR_VERSION . '.' . PHP_MINOR_VERSION . '.' . PHP_RELEASE_VERSION;
        return Constraint::satisfied($version, $constraint);
    }
    if (str_starts_with($name, 'ext-')) {
        $extension = substr($name, 4);
        $version = phpversion($extension) ?: null;
        return extension_loaded($extension) && Constraint::satisfied($version, $constraint);
    }
    $installedJson = @file_get_contents("{$vendor}/composer/installed.json");
    $installed = json_decode((string) $installedJson, true);
    foreach ($installed['packages'] ?? $installed ?? [] as $package) {
        if (($package['name'] ?? '') === $name) {
            return Constraint::satisfied($package['version'] ?? null, $constraint);
        }
    }
    return false;
}

/** Runs composer install for $manifest in $scratch: null, or why not. */
function composerInstall(string $manifest, string $scratch): ?string
{
    $composer = trim((string) shell_exec('command -v composer'));
    if ($composer === '') {
        return 'composer is not installed to fetch it';
    }
    foreach (['composer.json', 'composer.lock'] as $file) {
        if (is_file(dirname($manifest) . "/{$file}")) {
            copy(dirname($manifest) . "/{$file}", "{$scratch}/{$file}");
        }
    }
    $command = [
        $composer, 'install', '--no-dev', '--no-interaction', '--no-progress', '--no-scripts',
        '--no-plugins', '--no-ansi', "--working-dir={$scratch}",
    ];
    echo '$ ', implode(' ', $command), "\n";
    $process = proc_open($command, [0 => ['file', '/dev/null', 'r']], $pipes);
    if (!is_resource($process) || proc_close($process) !== 0) {
        return 'composer could not install it (is the package repository reachable?)';
    }
    return null;
}

/** $argv: the script, function/composer.json, function/vendor and an empty scratch directory. */
function main(array $argv): int
{
    [, $manifest, $target, $scratch] = $argv;
    $name = basename($manifest);
    $composerJson = json_decode((string) file_get_contents($manifest), true);
    $require = $composerJson['require'] ?? [];
    if (!is_array($composerJson) || !is_array($require)) {
        echo "{$name}: not a JSON object with a \"require\" object\n";
        return 1;
    }
    $missing = [];
    foreach ($require as $package => $constraint) {
        if (!present((string) $package, (string) $constraint, $target)) {
            $missing[] = "{$package} {$constraint}";
        }
    }
    $list = implode(', ', $missing);
    if ($missing === []) {
        echo "{$name}: every requirement is met on this machine\n";
        return 0;
    }
    echo "{$name}: installing {$list} into {$target}\n";
    $failure = composerInstall($manifest, $scratch);
    if ($failure !== null) {
        echo "{$name}: cannot install {$list}: not installed on this machine, and {$failure}\n";
        return 1;
    }
    exec('rm -rf ' . escapeshellarg($target));
    rename("{$scratch}/vendor", $target);
    echo "{$name}: installed {$list}\n";
    return 0;
}
