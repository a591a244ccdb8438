import t from 'tap';
import { encodeLines, encodeReply, formatReply, isSha256, parseReply, Replies, reply } from '../../protocol/index.js';
import { latin1, sha256 } from './fixtures.js';

const SHA = sha256('hello\n');

t.test('reply() and formatReply: CODE or CODE SP text, then LF', async (t) => {
  t.same(reply(200), { code: 200, text: '' });
  t.same(reply(200, 'PONG'), { code: 200, text: 'PONG' });
  t.equal(formatReply(reply(200)), '200\n', 'empty text: no trailing space');
  t.equal(formatReply(reply(200, 'PONG')), '200 PONG\n');
  t.equal(formatReply(reply(200, ' x ')), '200  x \n', 'text kept byte for byte');
  t.equal(latin1(encodeReply(reply(200, 'é'))), '200 \u00c3\u00a9\n', 'encoded as UTF-8');
});

t.test('encodeLines', async (t) => {
  t.equal(encodeLines([]).length, 0);
  t.equal(latin1(encodeLines(['211 0'])), '211 0\n');
  t.equal(latin1(encodeLines(['211 2', 'a 1 x', 'b 2 y'])), '211 2\na 1 x\nb 2 y\n');
});

t.test('formatReply and parseReply round-trip every reply the servers send', async (t) => {
  const all = [
    Replies.greeting('async'),
    Replies.pong(),
    Replies.echo(''),
    Replies.echo('  x  '),
    Replies.cancelled(),
    Replies.listHeader(3),
    Replies.stat(5, SHA),
    Replies.help(),
    Replies.bye(),
    Replies.sending(7),
    Replies.sendData(7),
    Replies.sent(SHA),
    Replies.committed('a', 5, SHA),
    Replies.exists('a', 5),
    Replies.idleTimeout(),
    Replies.tooManyConnections(),
    Replies.shuttingDown(),
    Replies.uploadFailed('why'),
    Replies.noSpace('why'),
    Replies.lineTooLong(),
    Replies.invalidUtf8(),
    Replies.unknownCommand(),
    Replies.syntax('why'),
    Replies.badSequence('why'),
    Replies.notFound('a'),
    Replies.tooLarge(10),
    Replies.badName('why'),
    Replies.alreadyExists('a'),
  ];
  for (const r of all) {
    const line = formatReply(r);
    t.match(line, /^[0-9]{3}( [^\n]*)?\n$/, `${r.code}: one reply line`);
    t.same(parseReply(line.slice(0, -1)), r, `${r.code} ${r.text.slice(0, 20)}: round trip`);
  }
});

t.test('reply codes and the texts PROTOCOL.md fixes', async (t) => {
  const line = (r: { code: number; text: string }) => formatReply(r).slice(0, -1);
  t.equal(line(Replies.greeting('sequential')), '220 socklab/1 sequential ready');
  t.equal(line(Replies.greeting('workers')), '220 socklab/1 workers ready');
  t.equal(line(Replies.pong()), '200 PONG');
  t.equal(line(Replies.echo('hi there ')), '200 hi there ');
  t.equal(line(Replies.echo('')), '200');
  t.equal(line(Replies.cancelled()), '200 cancelled');
  t.equal(line(Replies.listHeader(0)), '211 0');
  t.equal(line(Replies.listHeader(12)), '211 12');
  t.equal(line(Replies.stat(5, SHA)), `213 5 ${SHA}`);
  t.equal(Replies.help().code, 214);
  t.notMatch(Replies.help().text, /\n/, 'HELP is one line');
  for (const word of ['PING', 'ECHO', 'LIST', 'STAT', 'GET', 'PUT', 'HELP', 'QUIT', 'OVERWRITE', 'APPEND', 'CANCEL']) {
    t.match(Replies.help().text, word, `HELP mentions ${word}`);
  }
  t.equal(line(Replies.bye()), '221 bye');
  t.equal(line(Replies.sending(0)), '150 0');
  t.equal(line(Replies.sending(123)), '150 123');
  t.equal(line(Replies.sendData(123)), '150 send 123 bytes');
  t.equal(line(Replies.sent(SHA)), `226 ${SHA}`);
  t.equal(line(Replies.committed('a.txt', 9, SHA)), `226 a.txt 9 ${SHA}`);
  t.equal(line(Replies.exists('a.txt', 9)), '350 a.txt exists 9');
  t.equal(line(Replies.idleTimeout()), '421 idle timeout');
  t.equal(line(Replies.tooManyConnections()), '421 too many connections');
  t.equal(line(Replies.shuttingDown()), '421 shutting down');
  t.equal(Replies.uploadFailed('x').code, 451);
  t.equal(Replies.noSpace('x').code, 452);
  t.equal(line(Replies.lineTooLong()), '500 line too long');
  t.equal(Replies.invalidUtf8().code, 500);
  t.equal(line(Replies.unknownCommand()), '500 unknown command');
  t.equal(Replies.syntax('x').code, 501);
  t.equal(Replies.badSequence('x').code, 503);
  t.equal(Replies.notFound('a').code, 550);
  t.match(line(Replies.tooLarge(10)), /^552 too large/);
  t.match(line(Replies.badName('x')), /^553 bad name/);
  t.equal(line(Replies.alreadyExists('a.txt')), '554 a.txt exists');
});

t.test('isSha256: 64 lowercase hex digits', async (t) => {
  t.equal(isSha256(SHA), true);
  t.equal(isSha256('0'.repeat(64)), true);
  t.equal(isSha256('f'.repeat(64)), true);
  t.equal(isSha256(SHA.toUpperCase()), false, 'uppercase is not the form');
  t.equal(isSha256(SHA.slice(1)), false, '63 digits');
  t.equal(isSha256(`${SHA}0`), false, '65 digits');
  t.equal(isSha256('g'.repeat(64)), false);
  t.equal(isSha256(` ${SHA.slice(1)}`), false);
  t.equal(isSha256(`${SHA}\n`), false);
  t.equal(isSha256(''), false);
});
