<?php

/**
 * Data server for the php8 template tests: serves the files of a directory over HTTP/1.1 on
 * 127.0.0.1 (a free port, printed as "listening on PORT"), one connection at a time.
 *
 * Usage: php file_server.php ROOT range|plain
 *   range  honours "Range: bytes=first-[last]" (206, or 416 past the end);
 *   plain  ignores Range and always answers 200 with the whole file, like some static servers.
 * GET /__ranges answers the Range headers received since the last such request (JSON, null where
 * a request had none). GET /truncated announces 100 bytes, sends 10 and hangs up.
 */

declare(strict_types=1);

[, $root, $mode] = $argv;
$server = stream_socket_server('tcp://127.0.0.1:0', $errno, $error);
if ($server === false) {
    fwrite(STDERR, "cannot listen: {$error}\n");
    exit(1);
}
echo 'listening on ', explode(':', stream_socket_get_name($server, false))[1], "\n";
fflush(STDOUT);

$ranges = [];
while (true) {
    $client = @stream_socket_accept($server, -1);
    if ($client === false) {
        continue;
    }
    stream_set_timeout($client, 5);
    $head = '';
    while (!str_contains($head, "\r\n\r\n")) {
        $bytes = fread($client, 8192);
        if ($bytes === '' || $bytes === false) {
            break;
        }
        $head .= $bytes;
    }
    $path = explode(' ', $head)[1] ?? '/';
    $range = preg_match('/^Range:\s*(.*?)\r$/mi', $head, $match) ? $match[1] : null;
    if ($path === '/__ranges') {
        reply($client, 200, json_encode($ranges));
        $ranges = [];
    } elseif ($path === '/truncated') {
        $head = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n";
        fwrite($client, $head . '0123456789');
    } else {
        $ranges[] = $range;
        serveFile($client, $root . rawurldecode($path), $range, $mode === 'range');
    }
    fclose($client);
}

function serveFile(mixed $client, string $file, ?string $range, bool $honourRange): void
{
    if (str_contains($file, '..') || !is_file($file)) {
        reply($client, 404, 'not found');
        return;
    }
    $body = file_get_contents($file);
    $size = strlen($body);
    if (!$honourRange || !preg_match('/^bytes=(\d+)-(\d*)$/', (string) $range, $match)) {
        reply($client, 200, $body);
        return;
    }
    $first = (int) $match[1];
    if ($first >= $size) {
        reply($client, 416, '', "Content-Range: bytes */{$size}\r\n");
        return;
    }
    $last = $match[2] === '' ? $size - 1 : min((int) $match[2], $size - 1);
    $part = substr($body, $first, $last - $first + 1);
    reply($client, 206, $part, "Content-Range: bytes {$first}-{$last}/{$size}\r\n");
}

function reply(mixed $client, int $status, string $body, string $headers = ''): void
{
    $reasons = [
        200 => 'OK',
        206 => 'Partial Content',
        404 => 'Not Found',
        416 => 'Range Not Satisfiable',
    ];
    fwrite($client, "HTTP/1.1 {$status} {$reasons[$status]}\r\nContent-Length: " . strlen($body)
        . "\r\nConnection: close\r\n{$headers}\r\n{$body}");
}
