<?php
/*
 * Drives SendPulse's PHP SDK (sendpulse/rest-api 2.0.x, class Sendpulse\RestApi\ApiClient)
 * against a mailpulse server, set up the two ways docs/api.md ("Clients") describes, neither of
 * which lets the constructor ask api.sendpulse.com for a token.
 *
 *   php drive.php <sdk_dir> <url> <client_id> <client_secret> <sender> <workdir>
 *
 * <sdk_dir> holds the SDK: vendor/autoload.php (composer require sendpulse/rest-api) or src/
 * (a git checkout). Prints ONE JSON object: each step's result, or {"error", "message"}.
 */

[, $sdk, $url, $id, $secret, $sender, $work] = $argv;

if (is_file("$sdk/vendor/autoload.php")) {
    require "$sdk/vendor/autoload.php";
} else {
    spl_autoload_register(function (string $class) use ($sdk): void {
        $prefix = 'Sendpulse\\RestApi\\';
        if (strncmp($class, $prefix, strlen($prefix)) === 0) {
            $file = "$sdk/src/" . str_replace('\\', '/', substr($class, strlen($prefix))) . '.php';
            if (is_file($file)) {
                require $file;
            }
        }
    });
}

use Sendpulse\RestApi\ApiClient;
use Sendpulse\RestApi\Storage\FileStorage;

// The first way of docs/api.md, as printed there.
function mailpulse_client(string $url, string $id, string $secret): ApiClient
{
    $client = (new ReflectionClass(ApiClient::class))->newInstanceWithoutConstructor();
    $init = function () use ($url, $id, $secret): bool {
        $this->apiUrl = rtrim($url, '/');
        $this->userId = $id;
        $this->secret = $secret;
        $this->tokenStorage = new FileStorage();
        $this->token = null;
        return $this->getToken();
    };
    if (!$init->call($client)) {
        throw new RuntimeException('mailpulse refused the client_id / secret');
    }
    return $client;
}

$out = [];
$step = function (string $name, callable $run) use (&$out): void {
    try {
        $out[$name] = $run();
    } catch (Throwable $e) {
        $out[$name] = ['error' => get_class($e), 'message' => $e->getMessage(), 'code' => $e->getCode()];
    }
};

chdir($work);  // the default FileStorage keeps its token files in the working directory

// The problem: with no stored token the constructor asks api.sendpulse.com at once (the test
// runs this with https_proxy on a closed port, so it fails instead of leaving the machine).
mkdir("$work/empty");
$step('plain_constructor', function () use ($id, $secret, $work) {
    new ApiClient($id, $secret, new FileStorage("$work/empty/"));
    return true;
});
$client = null;
$step('construct_without_constructor', function () use (&$client, $url, $id, $secret) {
    $client = mailpulse_client($url, $id, $secret);
    return true;
});

// Hand-written shapes: recipients after array_filter (a gap at 1), cc after array_unique.
$step('send', fn () => $client->smtpSendMail([
    'html' => '<p>Hello from <b>PHP</b></p>',
    'text' => 'Hello from PHP',
    'subject' => 'PHP SDK',
    'from' => ['name' => 'Acme', 'email' => $sender],
    'to' => array_filter([['name' => 'Rita', 'email' => 'rita@example.org'], null, ['email' => 'bob@example.org']]),
    'cc' => array_unique(['carl@example.org', 'carl@example.org', 'dora@example.org']),
    'attachments' => ['notes.txt' => "plain text\n"],
]));
$sent = $out['send']['id'] ?? '';
$step('info_gapped', fn () => $client->post('smtp/emails/info', [
    'emails' => array_filter([$sent, '', 'zzzzzz-zzzzzz-zz']),
]));
$step('by_id', fn () => $client->smtpGetEmailInfoById($sent));
$step('list', fn () => $client->smtpListEmails(10, 0, '', '', '', 'bob@example.org'));

// The second way: the first client stored its token under md5(id::secret) in $work.
$second = null;
$step('construct_with_stored_token', function () use (&$second, $url, $id, $secret, $work) {
    $second = new ApiClient($id, $secret, new FileStorage("$work/"));
    $property = new ReflectionProperty(ApiClient::class, 'apiUrl');
    $property->setAccessible(true);
    $property->setValue($second, $url);
    return true;
});
$step('stored_token_total', fn () => $second->get('smtp/emails/total'));

echo json_encode($out), "\n";
