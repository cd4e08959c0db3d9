#!/usr/bin/env python3
"""The man page and the bash completion of cldetr, generated from the tables
the program itself runs on, so that neither can fall behind:

  - the verb table of src/cli/main.c   (static const verb verbs[] = {{"name", cmd_x, "help"}, ...})
  - every config key, include/cldetr/config_keys.def  (SECTION / X / END lines)
  - each verb's options: the --flags and -x flags named in the string
    literals of the file that defines cmd_<verb> (src/cli/*.c)

Usage:
  gen_docs.py man        MAIN_C CONFIG_KEYS_DEF VERSION OUTPUT
  gen_docs.py completion MAIN_C CONFIG_KEYS_DEF OUTPUT

Only the Python standard library; run by meson at build time (share/meson.build)."""
import os
import re
import sys

# ---------------------------------------------------------------- C sources


def c_tokens(text):
    """Tokens of C text without comments: ('str', value), ('id', name) and
    ('punct', char). Adjacent string literals are one token, as in C."""
    toks = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith('/*', i):
            j = text.find('*/', i + 2)
            if j < 0:
                raise ValueError('unterminated comment')
            i = j + 2
        elif text.startswith('//', i):
            j = text.find('\n', i)
            i = n if j < 0 else j + 1
        elif c == '"':
            j, buf = i + 1, []
            while text[j] != '"':
                if text[j] == '\\':
                    e = text[j + 1]
                    buf.append({'n': '\n', 't': '\t', '"': '"', '\\': '\\', "'": "'"}.get(e, '\\' + e))
                    j += 2
                else:
                    buf.append(text[j])
                    j += 1
            s = ''.join(buf)
            if toks and toks[-1][0] == 'str':
                toks[-1] = ('str', toks[-1][1] + s)
            else:
                toks.append(('str', s))
            i = j + 1
        elif c == "'":
            j = text.index("'", i + 2 if text[i + 1] == '\\' else i + 1)
            toks.append(('punct', 'char'))
            i = j + 1
        elif c.isalpha() or c == '_':
            m = re.compile(r'[A-Za-z_]\w*').match(text, i)
            toks.append(('id', m.group()))
            i = m.end()
        elif c.isspace():
            i += 1
        elif c == '#':                       # preprocessor line
            j = text.find('\n', i)
            i = n if j < 0 else j + 1
        else:
            toks.append(('punct', c))
            i += 1
    return toks


def read_verbs(main_c):
    """[(name, function, help)] in the order of main.c's verb table."""
    text = open(main_c, encoding='utf-8').read()
    m = re.search(r'\bverbs\s*\[\s*\]\s*=\s*\{', text)
    if not m:
        raise SystemExit(f'{main_c}: no "verbs[] = {{" table found')
    toks = c_tokens(text[m.end():])
    verbs, depth, row = [], 1, []
    for kind, val in toks:
        if kind == 'punct' and val == '{':
            depth += 1
            row = []
        elif kind == 'punct' and val == '}':
            depth -= 1
            if depth == 0:
                break
            if len(row) >= 3 and row[0][0] == 'str' and row[1][0] == 'id' and row[2][0] == 'str':
                verbs.append((row[0][1], row[1][1], row[2][1]))
            else:
                raise SystemExit(f'{main_c}: a verb row is not {{"name", cmd_fn, "help"}}: {row}')
        elif kind != 'punct':
            row.append((kind, val))
    if not verbs:
        raise SystemExit(f'{main_c}: the verb table is empty')
    return verbs


def read_config_keys(def_path):
    """[(section, section_help, [(key, type, default, range, help)])] in file order."""
    toks = c_tokens(open(def_path, encoding='utf-8').read())
    sections, i = [], 0
    while i < len(toks):
        kind, val = toks[i]
        if kind == 'id' and val in ('SECTION', 'X', 'END') and i + 1 < len(toks) and toks[i + 1] == ('punct', '('):
            args, cur, j = [], [], i + 2
            while toks[j] != ('punct', ')'):
                if toks[j] == ('punct', ','):
                    args.append(cur)
                    cur = []
                else:
                    cur.append(toks[j])
                j += 1
            args.append(cur)
            vals = [a[0][1] if len(a) == 1 else None for a in args]
            if None in vals:
                raise SystemExit(f'{def_path}: cannot read {val}({args})')
            if val == 'SECTION':
                sections.append((vals[0], vals[1], []))
            elif val == 'X':
                if len(vals) != 6 or not sections or sections[-1][0] != vals[0]:
                    raise SystemExit(f'{def_path}: X({", ".join(vals)}) is not inside SECTION({vals[0]})')
                sections[-1][2].append(tuple(vals[1:]))
            i = j + 1
        else:
            i += 1
    if not sections:
        raise SystemExit(f'{def_path}: no SECTION found')
    return sections


OPT_RE = re.compile(r'(--[a-z][a-z0-9-]*|-[a-zA-Z])=?')


def read_verb_options(main_c, verbs):
    """{verb: [options]}: the string literals that are a flag ("-o", "--set",
    "--set=") in the file beside main.c that defines the verb's function (the
    literals its argument loop compares with); [] when no file defines it."""
    cli_dir = os.path.dirname(os.path.abspath(main_c))
    texts = {}
    for f in sorted(os.listdir(cli_dir)):
        if f.endswith('.c') and f != os.path.basename(main_c):
            texts[f] = open(os.path.join(cli_dir, f), encoding='utf-8').read()
    out = {}
    for name, fn, _ in verbs:
        opts = []
        for text in texts.values():
            if re.search(r'^int\s+' + re.escape(fn) + r'\s*\(', text, re.M):
                for kind, s in c_tokens(text):
                    m = OPT_RE.fullmatch(s) if kind == 'str' else None
                    if m and m.group(1) not in opts:
                        opts.append(m.group(1))
                # the argument helper (src/cli/args.c) answers --help, and --set for verbs given ARGS_SETS
                if re.search(r'args_init\([^;]*ARGS_SETS', text):
                    opts += [o for o in ('--set',) if o not in opts]
                if 'args_init(' in text and '--help' not in opts:
                    opts.append('--help')
        out[name] = sorted(opts, key=lambda o: (o.startswith('--'), o))
    return out


# ---------------------------------------------------------------- man page

ENVIRONMENT = [
    ('CLDETR_DEVICE', 'The device to run on, overriding the config\'s [device] section: an index of '
     '`cldetr devices`, a substring of a device\'s name, gpu, cpu or any.'),
    ('CLDETR_KERNEL_DIR', 'Load the OpenCL kernel sources (*.cl) from this folder instead of the copy '
     'embedded in the library: for editing kernels without rebuilding.'),
    ('XDG_CACHE_HOME', 'Compiled kernel programs and GEMM tunings are cached in $XDG_CACHE_HOME/cldetr '
     '(else $HOME/.cache/cldetr, else /tmp/cldetr-cache). Deleting the folder is safe: it is rebuilt.'),
    ('CLDETR_VERBOSE', 'When set, say which cached programs and GEMM tunings were used or rebuilt.'),
    ('CLDETR_GEMM_TUNING', 'off: ignore the GEMM tunings stored by `cldetr tune` (CLBlast\'s defaults, the '
     'built-in tile shapes).'),
    ('CLDETR_GEMM_KERNELS', 'clblast, rows, tiles or auto (the default): which kernels run the matrix products. '
     'auto takes cldetr\'s row kernels on CPUs and its tile kernels on GPUs, the faster ones where measured '
     '(bench/README.md); the others are for comparisons.'),
    ('CLDETR_KERNEL_SHAPE', 'cpu, gpu or auto (the default): run the kernels in their CPU shape (work-items '
     'looping over rows with explicit vectors) or their GPU shape (work-groups sharing local memory) whatever '
     'the device says it is; auto: the CPU shape on every device that is not a GPU. For tests (oclgrind calls '
     'itself a GPU) and measurements.'),
    ('CLDETR_ATTENTION', 'fused, separate or auto (the default): how attention runs. fused: one kernel '
     'forward and two backward per attention with heads 8, 16, 32 or 64 wide, the weights recomputed, never '
     'stored (DETR-R50 800x800 batch 2: 640 MiB less device memory); separate: the score and value products, '
     'softmax and dropout as separate kernels. Both compute the same function with the same dropout mask. '
     'auto takes the separate kernels on every device: faster on CPUs (bench/README.md); GPUs not yet measured.'),
    ('CLDETR_CONV_TILES', 'implicit, columns or auto (the default): on the tile GEMM kernels (GPUs), whether a '
     'convolution\'s products read the images and the output gradient in place (implicit: no im2col columns, '
     'no packed copies, four launches a convolution fewer in a training step, the same bits) or through '
     'im2col\'s columns. auto takes the columns until a GPU has timed both (bench/README.md).'),
    ('CLDETR_GEMM_LAYOUT', 'row or swap: force the operand order of CLBlast GEMM calls instead of '
     'choosing it per shape (for measurements).'),
    ('CLDETR_OPENBLAS', 'bench-ops: the OpenBLAS library to compare with (default libopenblas.so.0).'),
    ('CLDETR_FONT', 'A TrueType font for the text in prediction pictures and charts (default: DejaVu Sans from '
     'fonts-dejavu-core, else other common fonts, else a small built-in bitmap font).'),
]

FILES = [
    ('RUN/config.ini', 'the effective config of a run: every key, defaults included'),
    ('RUN/metrics.csv', 'one row per logged step: epoch, learning rate, each loss term, class error, '
     'gradient norm, images/s'),
    ('RUN/eval.csv, RUN/eval.json', 'the COCO AP at each validation'),
    ('RUN/val_results.json', 'the detections of the last validation (COCO results format)'),
    ('RUN/log.txt', 'the console lines of the run'),
    ('RUN/loss.png, RUN/ap.png', 'the loss and AP curves (log.chart)'),
    ('RUN/last.ckpt, RUN/best.ckpt', 'the latest checkpoint, and the one with the best validation AP'),
    ('$XDG_CACHE_HOME/cldetr/', 'compiled kernel programs (by device, driver, options and source hash) '
     'and GEMM tunings'),
]

EXAMPLES = [
    ('Train on synthetic shapes (the config of the source tree writes the dataset to datasets/shapes when it '
     'is missing), or write such a dataset anywhere:',
     ['cldetr train configs/shapes.ini',
      'cldetr make-shapes /tmp/shapes --train 100 --val 20 --size 64']),
    ('Override keys, then continue a stopped run where it stopped:',
     ['cldetr train configs/shapes.ini --set train.lr=2e-4 --set model.dec_layers=3',
      'cldetr train --resume runs/shapes-20261126-101500']),
    ('Evaluate a run, and detect objects in images with it:',
     ['cldetr eval runs/shapes-20261126-101500 --per-class',
      'cldetr predict runs/shapes-20261126-101500 photo.jpg --threshold 0.5 -o out']),
    ('Export the weights under the official DETR names (loads into PyTorch):',
     ['cldetr export runs/shapes-20261126-101500 -o detr.safetensors']),
    ('Print the effective config, and every key with its help:',
     ['cldetr config configs/shapes.ini --set train.batch_size=4', 'cldetr config --keys']),
]

TYPE_WORDS = {'INT': 'integer', 'FLOAT': 'number', 'BOOL': 'true or false',
              'STR': 'text', 'ENUM': 'one of', 'INTS': 'list of integers', 'FLOATS': 'list of numbers'}


def roff(text):
    """Text for a roff line: backslashes, hyphens and non-ASCII escaped, and
    no line starting with a control character."""
    out = []
    for ch in text:
        if ch == '\\':
            out.append('\\e')
        elif ch == '-':
            out.append('\\-')
        elif ch == '\u2014':
            out.append('\\(em')
        elif ch == '\u2013':
            out.append('\\(en')
        elif ord(ch) > 126:
            out.append('\\[u%04X]' % ord(ch))
        else:
            out.append(ch)
    s = ''.join(out)
    return '\\&' + s if s[:1] in ('.', "'") else s


def code(text):
    """`code` spans of a help text in bold."""
    parts = text.split('`')
    return ''.join(roff(p) if k % 2 == 0 else '\\fB' + roff(p) + '\\fR' for k, p in enumerate(parts))


def man_page(verbs, sections, options, version):
    L = []
    L.append('.\\" cldetr.1: generated by tools/gen_docs.py from src/cli/main.c and '
             'include/cldetr/config_keys.def; edit those, not this.')
    L.append(f'.TH CLDETR 1 "" "cldetr {roff(version)}" "User Commands"')
    L.append('.nh')
    L.append('.ad l')
    L.append('.SH NAME')
    L.append('cldetr \\- DETR (detection transformer) training and inference on OpenCL')
    L.append('.SH SYNOPSIS')
    L.append('.B cldetr')
    L.append('.I verb')
    L.append('.RI [ options ]')
    L.append('.br')
    L.append('.B cldetr')
    L.append('.I verb')
    L.append('.B \\-\\-help')
    L.append('.br')
    L.append('.B cldetr')
    L.append('.RB [ \\-\\-help | \\-\\-version ]')
    L.append('.SH DESCRIPTION')
    L.append(code('cldetr trains DETR, the detection transformer (Carion et al., 2020), and runs it on any '
                  'OpenCL device: GPUs of any vendor, and CPUs through PoCL. The model is the official one '
                  '(ResNet backbone, sine position encoding, transformer encoder and decoder with object '
                  'queries, Hungarian matching and the set loss) with the official parameter names.'))
    L.append('.PP')
    L.append(code('The first argument is a verb; `cldetr VERB --help` lists its options. Training, '
                  'summary, bench and step read an INI config file (see CONFIGURATION); `--set '
                  'section.key=value` overrides one key and may be repeated. A training run writes a run '
                  'folder (see FILES) that eval, predict, export and `train --resume` take.'))
    L.append('.SH VERBS')
    for name, _, help_ in verbs:
        L.append('.TP')
        L.append('.B ' + roff(name))
        L.append(code(help_))
        if options.get(name):
            L.append('.br')
            L.append('Options: ' + ', '.join('\\fB' + roff(o) + '\\fR' for o in options[name]) + '.')
    L.append('.SH CONFIGURATION')
    L.append(code('A config is an INI file: [section] lines, then key = value lines. A key left out takes '
                  'its default; an unknown key or a value out of its range is an error that names the key '
                  '(and the closest known key). On the command line, `--set section.key=value` overrides a '
                  'key after the file is read. `cldetr config FILE` prints the effective values. Paths are '
                  'relative to the folder cldetr runs in unless the help says otherwise. The keys, by '
                  'section:'))
    for sec, sec_help, keys in sections:
        L.append(f'.SS [{roff(sec)}]')
        L.append(code(sec_help[:1].upper() + sec_help[1:] + '.'))
        for key, typ, default, rng, help_ in keys:
            L.append('.TP')
            shown = default if default != '' else '(empty)'
            L.append(f'\\fB{roff(sec)}.{roff(key)}\\fR = \\fI{roff(shown)}\\fR')
            kind = TYPE_WORDS.get(typ, typ.lower())
            if typ == 'ENUM':
                kind += ' ' + ', '.join(rng.split('|'))
            elif rng and rng != 'nonempty':
                kind += ' in ' + rng if rng[0] in '[(' else ' ' + rng
            elif rng == 'nonempty':
                kind += ', not empty'
            L.append(code(help_ + '.') + ' \\fI(' + roff(kind) + ')\\fR')
    L.append('.SH ENVIRONMENT')
    for name, text in ENVIRONMENT:
        L.append('.TP')
        L.append('.B ' + roff(name))
        L.append(code(text))
    L.append('.SH FILES')
    for name, text in FILES:
        L.append('.TP')
        L.append('.I ' + roff(name))
        L.append(code(text[:1].upper() + text[1:] + '.'))
    L.append('.SH EXIT STATUS')
    L.append('0 on success, 1 on an error (the message names the file, key or value and what to do), '
             '2 on a usage error, 130 when training was interrupted with Ctrl\\-C (after writing last.ckpt).')
    L.append('.SH EXAMPLES')
    for text, cmds in EXAMPLES:
        L.append('.PP')
        L.append(code(text))
        L.append('.PP')
        L.append('.RS 4')
        L.append('.nf')
        L.extend(roff(c) for c in cmds)
        L.append('.fi')
        L.append('.RE')
    L.append('.SH SEE ALSO')
    L.append('.BR clinfo (1);')
    L.append('the library: the headers in include/cldetr/ and pkg\\-config cldetr.')
    return '\n'.join(L) + '\n'


# ---------------------------------------------------------------- bash completion

def completion(verbs, sections, options):
    set_verbs = [v for v, _, _ in verbs if '--set' in options.get(v, [])]
    keys = [f'{s}.{k}' for s, _, ks in sections for k, *_ in ks]
    values = []
    for s, _, ks in sections:
        for k, typ, _, rng, _ in ks:
            if typ == 'ENUM':
                values.append((f'{s}.{k}', rng.replace('|', ' ')))
            elif typ == 'BOOL':
                values.append((f'{s}.{k}', 'true false'))
            elif typ == 'STR':                      # paths and names: files
                values.append((f'{s}.{k}', '@file'))
    opt_cases = ''.join(f'        {v}) opts="{" ".join(options[v] + ([] if "--help" in options[v] else ["--help"]))}" ;;\n'
                        for v, _, _ in verbs if options.get(v))
    value_cases = ''.join(f'        {k}) vals="{v}" ;;\n' for k, v in values)
    return f'''# bash completion for cldetr: generated by tools/gen_docs.py from src/cli/main.c
# (the verbs), include/cldetr/config_keys.def (the --set keys) and src/cli/*.c (the options).

_cldetr_verbs="{' '.join(v for v, _, _ in verbs)}"
_cldetr_set_verbs=" {' '.join(set_verbs)} "
_cldetr_keys="{' '.join(keys)}"

_cldetr() {{
    # bash splits "section.key=value" at each '=' (COMP_WORDBREAKS): join the pieces again
    local i=$COMP_CWORD cur="" w prev
    while :; do
        w=${{COMP_WORDS[i]}}
        cur="$w$cur"
        if [[ $i -ge 3 && ( $w == "=" || ${{COMP_WORDS[i-1]}} == "=" ) ]]; then
            i=$((i - 1))
        else
            break
        fi
    done
    prev=${{COMP_WORDS[i-1]}}
    COMPREPLY=()
    if [[ $i -eq 1 ]]; then
        COMPREPLY=($(compgen -W "$_cldetr_verbs --help --version" -- "$cur"))
        return 0
    fi
    local verb=${{COMP_WORDS[1]}}
    if [[ $prev == "--set" && $_cldetr_set_verbs == *" $verb "* ]] || [[ $cur == --set=* ]]; then
        local lead=""
        [[ $cur == --set=* ]] && lead="--set=" && cur=${{cur#--set=}}
        if [[ $cur == *=* ]]; then                 # a value: the choices of an enum or a boolean
            local key=${{cur%%=*}} vals=""   # @file: a path
            case $key in
{value_cases}            esac
            if [[ $vals == "@file" ]]; then
                compopt -o filenames 2>/dev/null
                COMPREPLY=($(compgen -f -- "${{cur#*=}}"))
            else
                COMPREPLY=($(compgen -W "$vals" -- "${{cur#*=}}"))
            fi
            # bash replaces only the text after the last '=' (a word break): give it the value alone
            [[ $COMP_WORDBREAKS == *"="* ]] || COMPREPLY=("${{COMPREPLY[@]/#/$lead$key=}}")
        else                                       # a key, with its '=' and no space after it
            COMPREPLY=($(compgen -W "$_cldetr_keys" -S "=" -- "$cur"))
            [[ -n $lead && $COMP_WORDBREAKS != *"="* ]] && COMPREPLY=("${{COMPREPLY[@]/#/$lead}}")
            compopt -o nospace 2>/dev/null
        fi
        return 0
    fi
    if [[ $cur == -* ]]; then
        local opts="--help"
        case $verb in
{opt_cases}        esac
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        return 0
    fi
    # positional arguments and option values: files and folders
    compopt -o filenames 2>/dev/null
    COMPREPLY=($(compgen -f -- "$cur"))
    return 0
}}
complete -F _cldetr cldetr
'''


def main(argv):
    if len(argv) == 6 and argv[1] == 'man':
        verbs = read_verbs(argv[2])
        text = man_page(verbs, read_config_keys(argv[3]), read_verb_options(argv[2], verbs), argv[4])
        out = argv[5]
    elif len(argv) == 5 and argv[1] == 'completion':
        verbs = read_verbs(argv[2])
        text = completion(verbs, read_config_keys(argv[3]), read_verb_options(argv[2], verbs))
        out = argv[4]
    else:
        sys.stderr.write(__doc__)
        return 2
    with open(out, 'w', encoding='utf-8') as f:
        f.write(text)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
