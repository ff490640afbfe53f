/**
 * Reads a Dockerfile the way BuildKit does, far enough to check a template's image without a
 * Docker engine: parser directives (escape), comments, line continuations (comment and blank lines
 * inside one are skipped), heredocs, JSON (exec) and shell forms. describeImage() then folds the
 * instructions into build stages: files copied, user, environment, working directory, command.
 * Variables are not expanded; the checks reject them where they would matter.
 */

'use strict';

const path = require('node:path');

// BuildKit's directive syntax; directives are only read before the first other line.
const DIRECTIVE = /^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$/;
const HEREDOC = /<<(-?)(["']?)([A-Za-z_][A-Za-z0-9_]*)\2/g;
const HEREDOC_KEYWORDS = new Set(['RUN', 'COPY', 'ADD']);

function isBlankOrComment(line) {
  return /^\s*(#.*)?$/.test(line);
}

/**
 * Instructions of `text` in order: {keyword (upper case), args (after the keyword, continuations
 * joined), line (1-based, where it starts), heredocs [{name, body}]}. Throws SyntaxError for a
 * duplicated or invalid directive and for an unterminated heredoc.
 */
function parse(text) {
  const lines = text.split(/\r?\n/);
  let escape = '\\';
  const directives = new Set();
  let i = 0;
  for (; i < lines.length; i++) {
    const match = DIRECTIVE.exec(lines[i]);
    if (!match) break;
    const name = match[1].toLowerCase();
    if (directives.has(name)) throw new SyntaxError(`line ${i + 1}: directive ${name} set twice`);
    directives.add(name);
    if (name === 'escape') {
      if (match[2] !== '\\' && match[2] !== '`') {
        throw new SyntaxError(`line ${i + 1}: escape must be \\ or \`, not ${match[2]}`);
      }
      escape = match[2];
    }
  }
  const continued = new RegExp(`${escape === '\\' ? '\\\\' : '`'}[ \\t]*$`);
  const instructions = [];
  while (i < lines.length) {
    const line = i + 1;
    let joined = lines[i++];
    if (isBlankOrComment(joined)) continue;
    while (continued.test(joined)) {
      joined = joined.replace(continued, '');
      while (i < lines.length && isBlankOrComment(lines[i])) i++;
      if (i === lines.length) break;
      joined += lines[i++];
    }
    const [, word, args] = /^\s*(\S+)\s*([\s\S]*?)\s*$/.exec(joined);
    const instruction = { keyword: word.toUpperCase(), args, line, heredocs: [] };
    if (HEREDOC_KEYWORDS.has(instruction.keyword)) {
      for (const [, strip, , name] of args.matchAll(HEREDOC)) {
        const body = [];
        for (;;) {
          if (i === lines.length) throw new SyntaxError(`line ${line}: heredoc ${name} never ends`);
          const bodyLine = strip ? lines[i++].replace(/^\t+/, '') : lines[i++];
          if (bodyLine === name) break;
          body.push(bodyLine);
        }
        instruction.heredocs.push({ name, body: body.join('\n') });
      }
    }
    instructions.push(instruction);
  }
  return { escape, instructions };
}

/** The array of an exec-form (JSON) argument list, or null when `args` is in shell form. */
function execForm(args) {
  if (!args.startsWith('[')) return null;
  try {
    const value = JSON.parse(args);
    return Array.isArray(value) && value.every((s) => typeof s === 'string') ? value : null;
  } catch {
    return null; // Docker runs what is not valid JSON in shell form
  }
}

/** Shell-form words: split on unquoted blanks; quotes and the escape character removed. */
function words(text, escape = '\\') {
  const result = [];
  let word = null;
  let quote = null;
  for (let k = 0; k < text.length; k++) {
    const c = text[k];
    if (quote === "'") {
      if (c === "'") quote = null;
      else word += c;
    } else if (c === escape && k + 1 < text.length) {
      const next = text[++k];
      word = (word ?? '') + (quote === '"' && next !== '"' && next !== escape ? c + next : next);
    } else if (quote === '"') {
      if (c === '"') quote = null;
      else word += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      word = word ?? '';
    } else if (/\s/.test(c)) {
      if (word !== null) result.push(word);
      word = null;
    } else {
      word = (word ?? '') + c;
    }
  }
  if (quote) throw new SyntaxError(`unterminated ${quote} quote in: ${text}`);
  if (word !== null) result.push(word);
  return result;
}

/** Leading --name[=value] flags of COPY, ADD, RUN and FROM, and what follows them. */
function splitFlags(args) {
  const flags = {};
  let rest = args;
  for (
    let m;
    (m = /^--([A-Za-z][\w-]*)(?:=(\S*))?\s*/.exec(rest));
    rest = rest.slice(m[0].length)
  ) {
    flags[m[1]] = m[2] ?? true;
  }
  return { flags, rest };
}

/** ENV pairs, in the `ENV a=1 b="2 3"` form and the legacy `ENV name value with blanks` one. */
function envPairs(args, escape) {
  const parts = words(args, escape);
  if (parts.length > 0 && !parts[0].includes('=')) {
    return [[parts[0], args.slice(args.indexOf(parts[0]) + parts[0].length).trim()]];
  }
  return parts.map((part) => {
    const at = part.indexOf('=');
    if (at <= 0) throw new SyntaxError(`ENV ${args}: ${part} is not name=value`);
    return [part.slice(0, at), part.slice(at + 1)];
  });
}

/** A command as written: {exec: [...]} or {shell: "..."}. */
function command(args) {
  const exec = execForm(args);
  return exec ? { exec } : { shell: args };
}

/**
 * The build stages of a parsed Dockerfile, in order. Each: {base, name, line, user, env (Map),
 * workdir, entrypoint, cmd, volumes, copies}. A stage built FROM an earlier one starts from that
 * stage's state. entrypoint/cmd: a command, null when reset, undefined when the base image's
 * (unknown here) applies. copies: [{keyword, line, from, sources, dest, destIsDir}], dest absolute;
 * a heredoc source is "<<NAME".
 */
function describeImage({ escape, instructions }) {
  const stages = [];
  let stage = null;
  for (const instruction of instructions) {
    const { keyword, args, line } = instruction;
    if (keyword === 'FROM') {
      const [base, as, name] = words(splitFlags(args).rest, escape);
      const parent = stages.find((s) => s.name && s.name === base?.toLowerCase());
      stage = {
        user: undefined,
        workdir: '/',
        entrypoint: undefined,
        cmd: undefined,
        ...structuredClone(parent ?? { env: new Map(), volumes: [], copies: [] }),
        base,
        name: as?.toLowerCase() === 'as' && name ? name.toLowerCase() : null,
        line,
      };
      stages.push(stage);
      continue;
    }
    if (!stage) {
      if (keyword === 'ARG') continue; // ARGs before the first FROM parameterise the FROMs
      throw new SyntaxError(`line ${line}: ${keyword} before the first FROM`);
    }
    switch (keyword) {
      case 'ENV':
        for (const [name, value] of envPairs(args, escape)) stage.env.set(name, value);
        break;
      case 'USER':
        stage.user = words(args, escape)[0];
        break;
      case 'WORKDIR':
        stage.workdir = path.posix.resolve(stage.workdir, words(args, escape)[0] ?? '');
        break;
      case 'ENTRYPOINT':
        stage.entrypoint = command(args);
        if (stage.cmd === undefined) stage.cmd = null; // ENTRYPOINT resets the base image's CMD
        break;
      case 'CMD':
        stage.cmd = command(args);
        break;
      case 'VOLUME':
        stage.volumes.push(...(execForm(args) ?? words(args, escape)));
        break;
      case 'COPY':
      case 'ADD': {
        const { flags, rest } = splitFlags(args);
        const list = execForm(rest) ?? words(rest, escape);
        if (list.length < 2)
          throw new SyntaxError(`line ${line}: ${keyword} needs a source and a destination`);
        const dest = list[list.length - 1];
        stage.copies.push({
          keyword,
          line,
          from: typeof flags.from === 'string' ? flags.from : null,
          sources: list.slice(0, -1),
          dest: path.posix.resolve(stage.workdir, dest),
          destIsDir: dest.endsWith('/') || list.length > 2,
        });
        break;
      }
      default:
        break; // RUN, ARG, LABEL, EXPOSE, ...: nothing the checks look at
    }
  }
  if (stages.length === 0) throw new SyntaxError('no FROM: not a Dockerfile');
  return stages;
}

module.exports = { parse, execForm, words, describeImage };
