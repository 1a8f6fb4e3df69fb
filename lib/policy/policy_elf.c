/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Policy object reading and relocation (control path).
 *
 * The object is read once, whole, into memory we own (sky_file_read: regular files of at
 * most SKY_POLICY_MAX_FILE bytes, read within a time bound), and parsed from there
 * (libelf's elf_memory, libbpf's bpf_object__open_mem): a FIFO, a device or a file
 * changed while or after it is read has no say in what is loaded.
 *
 * libbpf opens the object (no kernel, no root) for the map specs and their BTF types;
 * libelf gives the SEC("policy") code and its relocations (libbpf 1.1 exposes none).
 * Before libbpf sees the file, a precheck of what libbpf 1.1 trusts blindly (it crashes
 * on a bad .BTF). Relocation marks each ld_imm64 of a map symbol with its map and each
 * call of a helper (`extern ... __ksym`) with the helper; binding them to a running
 * map is the hook's job (policy.c). Then the checker (policy_check.c).
 */
#include <errno.h>
#include <gelf.h>
#include <libelf.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <rte_bpf.h>

#include "skygate/file.h"

#include "policy_obj.h"

#ifndef EM_BPF
#define EM_BPF 247
#endif
#define R_BPF_64_64 1
#define R_BPF_64_32 10

static __thread char *lbpf_buf;
static __thread size_t lbpf_len;

static int
lbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	size_t used;

	if (level == LIBBPF_DEBUG || lbpf_buf == NULL)
		return 0;
	used = strlen(lbpf_buf);
	if (used + 1 < lbpf_len)
		vsnprintf(lbpf_buf + used, lbpf_len - used, fmt, ap);
	return 0;
}

static enum pmap_fmt
fmt_of(const struct btf *btf, uint32_t id, uint32_t size)
{
	const struct btf_type *t = btf != NULL && id != 0 ? btf__type_by_id(btf, id) : NULL;
	const char *name;

	while (t != NULL && (btf_is_const(t) || btf_is_volatile(t)))
		t = btf__type_by_id(btf, t->type);
	name = t != NULL ? btf__name_by_offset(btf, t->name_off) : NULL;
	if (name != NULL && strcmp(name, "sky_cc_t") == 0 && size == 2)
		return FMT_CC;
	if (name != NULL && strcmp(name, "sky_cc_pair") == 0 && size == 4)
		return FMT_CC_PAIR;
	if (name != NULL && strcmp(name, "sky_verdict_t") == 0 && size == 4)
		return FMT_VERDICT;
	if (size == 1 || size == 2 || size == 4 || size == 8) {
		/* a struct of a number's size is still shown in hex */
		while (t != NULL && btf_is_typedef(t))
			t = btf__type_by_id(btf, t->type);
		if (t != NULL && (btf_is_struct(t) || btf_is_union(t) || btf_is_array(t)))
			return FMT_HEX;
		return FMT_NUM;
	}
	return FMT_HEX;
}

static bool
btf_name_ok(const struct btf *btf, uint32_t off)
{
	return off == 0 || btf__str_by_offset(btf, off) != NULL;
}

/* Is every type a BTF type refers to in the BTF? libbpf 1.1 follows references without
 * checking them (libbpf 1.3 validates them) and dereferences NULL on a bad one. */
static int
btf_refs_ok(const struct btf *btf, char *why, size_t len)
{
	uint32_t n = btf__type_cnt(btf);

	for (uint32_t id = 1; id < n; id++) {
		const struct btf_type *t = btf__type_by_id(btf, id);
		uint32_t ref[2] = {0, 0}, vlen = btf_vlen(t);
		int kind = btf_kind(t);

		/* libbpf 1.1 passes names to strcmp() unchecked */
		if (!btf_name_ok(btf, t->name_off)) {
			snprintf(why, len, "type %u has a bad name offset", id);
			return -EINVAL;
		}
		for (uint32_t i = 0; i < vlen; i++) {
			uint32_t no = btf_is_composite(t)    ? btf_members(t)[i].name_off
				      : btf_is_func_proto(t) ? btf_params(t)[i].name_off
				      : btf_is_enum(t)	     ? btf_enum(t)[i].name_off
				      : btf_is_enum64(t)     ? btf_enum64(t)[i].name_off
							     : 0;

			if (!btf_name_ok(btf, no)) {
				snprintf(why, len, "entry %u of type %u has a bad name offset", i,
					 id);
				return -EINVAL;
			}
		}
		switch (kind) {
		case BTF_KIND_INT:
		case BTF_KIND_ENUM:
		case BTF_KIND_ENUM64:
		case BTF_KIND_FWD:
		case BTF_KIND_FLOAT:
			break;
		case BTF_KIND_PTR:
		case BTF_KIND_TYPEDEF:
		case BTF_KIND_VOLATILE:
		case BTF_KIND_CONST:
		case BTF_KIND_RESTRICT:
		case BTF_KIND_VAR:
		case BTF_KIND_TYPE_TAG:
		case BTF_KIND_DECL_TAG:
			ref[0] = t->type;
			break;
		case BTF_KIND_FUNC:
			if (t->type >= n || !btf_is_func_proto(btf__type_by_id(btf, t->type))) {
				snprintf(why, len, "function type %u is not a prototype", id);
				return -EINVAL;
			}
			break;
		case BTF_KIND_ARRAY:
			ref[0] = btf_array(t)->type;
			ref[1] = btf_array(t)->index_type;
			break;
		case BTF_KIND_STRUCT:
		case BTF_KIND_UNION:
			for (uint32_t i = 0; i < vlen; i++)
				if (btf_members(t)[i].type >= n) {
					snprintf(why, len, "member %u of type %u refers to type %u",
						 i, id, btf_members(t)[i].type);
					return -EINVAL;
				}
			break;
		case BTF_KIND_FUNC_PROTO:
			ref[0] = t->type;
			for (uint32_t i = 0; i < vlen; i++)
				if (btf_params(t)[i].type >= n) {
					snprintf(why, len,
						 "parameter %u of type %u refers to type %u", i, id,
						 btf_params(t)[i].type);
					return -EINVAL;
				}
			break;
		case BTF_KIND_DATASEC:
			for (uint32_t i = 0; i < vlen; i++) {
				uint32_t v = btf_var_secinfos(t)[i].type;
				const struct btf_type *vt = v < n ? btf__type_by_id(btf, v) : NULL;

				if (vt == NULL || (!btf_is_var(vt) && !btf_is_func(vt))) {
					snprintf(why, len,
						 "entry %u of section type %u is not a variable", i,
						 id);
					return -EINVAL;
				}
			}
			break;
		default:
			snprintf(why, len, "type %u has unknown kind %d", id, kind);
			return -EINVAL;
		}
		if (ref[0] >= n || ref[1] >= n) {
			snprintf(why, len, "type %u refers to type %u, there are %u", id,
				 ref[0] >= n ? ref[0] : ref[1], n);
			return -EINVAL;
		}
	}
	return 0;
}

/* Checks libbpf 1.1 does not do before it trusts the object (it crashes instead). */
static int
precheck(void *buf, size_t len, const char *path, char *err, size_t errlen)
{
	int rc = 0;
	Elf *elf;
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;
	size_t shstrndx;

	if (elf_version(EV_CURRENT) == EV_NONE) {
		snprintf(err, errlen, "libelf: %s", elf_errmsg(-1));
		return -EINVAL;
	}
	elf = elf_memory(buf, len);
	if (elf == NULL || elf_getshdrstrndx(elf, &shstrndx) != 0) {
		snprintf(err, errlen, "%s: not an ELF object (%s)", path, elf_errmsg(-1));
		rc = -EINVAL;
		goto out;
	}
	while (rc == 0 && (scn = elf_nextscn(elf, scn)) != NULL) {
		const char *name;
		Elf_Data *d;
		struct btf *btf;
		char why[160];

		if (gelf_getshdr(scn, &sh) == NULL ||
		    (name = elf_strptr(elf, shstrndx, sh.sh_name)) == NULL ||
		    strcmp(name, ".BTF") != 0)
			continue;
		d = elf_getdata(scn, NULL);
		if (d == NULL || d->d_buf == NULL || d->d_size == 0) {
			snprintf(err, errlen, "%s: malformed .BTF section", path);
			rc = -EINVAL;
			break;
		}
		btf = btf__new(d->d_buf, (uint32_t)d->d_size);
		if (libbpf_get_error(btf) != 0) {
			snprintf(err, errlen, "%s: malformed .BTF section", path);
			rc = -EINVAL;
			break;
		}
		if (btf_refs_ok(btf, why, sizeof(why)) != 0) {
			snprintf(err, errlen, "%s: malformed .BTF section: %s", path, why);
			rc = -EINVAL;
		}
		btf__free(btf);
	}
out:
	if (elf != NULL)
		elf_end(elf);
	return rc;
}

static int
read_maps(const void *buf, size_t len, const char *path, struct pobj *o, char *err, size_t errlen)
{
	char msg[512] = "";
	struct bpf_object *obj;
	struct bpf_map *map;
	const struct btf *btf;
	libbpf_print_fn_t old;
	long lerr;
	int rc = 0;

	lbpf_buf = msg;
	lbpf_len = sizeof(msg);
	old = libbpf_set_print(lbpf_print);
	LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = path);
	obj = bpf_object__open_mem(buf, len, &opts);
	libbpf_set_print(old);
	lbpf_buf = NULL;
	lerr = libbpf_get_error(obj);
	if (obj == NULL || lerr != 0) {
		size_t l = strlen(msg);

		while (l > 0 && msg[l - 1] == '\n')
			msg[--l] = '\0';
		snprintf(err, errlen, "%s: libbpf cannot open the object: %s%s%s", path,
			 strerror(lerr ? (int)-lerr : errno), msg[0] ? ": " : "", msg);
		return -EINVAL;
	}
	btf = bpf_object__btf(obj);
	bpf_object__for_each_map(map, obj)
	{
		struct pmap_spec *s;

		if (bpf_map__is_internal(map)) {
			snprintf(err, errlen,
				 "%s: global data (%s) is not supported by librte_bpf: use "
				 "constants or maps",
				 path, bpf_map__name(map));
			rc = -EINVAL;
			break;
		}
		if (o->n_maps == SKY_POLICY_MAX_MAPS) {
			snprintf(err, errlen, "%s: more than %u maps", path, SKY_POLICY_MAX_MAPS);
			rc = -EINVAL;
			break;
		}
		s = &o->maps[o->n_maps++];
		memset(s, 0, sizeof(*s));
		snprintf(s->name, sizeof(s->name), "%s", bpf_map__name(map));
		s->type = bpf_map__type(map);
		s->key_size = bpf_map__key_size(map);
		s->value_size = bpf_map__value_size(map);
		s->max_entries = bpf_map__max_entries(map);
		s->key_fmt = s->type == SKY_MAP_LPM
				     ? FMT_PREFIX
				     : fmt_of(btf, bpf_map__btf_key_type_id(map), s->key_size);
		s->value_fmt = fmt_of(btf, bpf_map__btf_value_type_id(map), s->value_size);
	}
	bpf_object__close(obj);
	return rc;
}

static int
map_index(const struct pobj *o, const char *name)
{
	for (uint32_t i = 0; i < o->n_maps; i++)
		if (strcmp(o->maps[i].name, name) == 0)
			return (int)i;
	return -1;
}

static int
read_code(void *buf, size_t len, const char *path, struct pobj *o, char *err, size_t errlen)
{
	int rc = -EINVAL;
	Elf *elf = NULL;
	Elf_Scn *scn = NULL, *sym_scn = NULL, *prog_scn = NULL;
	GElf_Ehdr eh;
	GElf_Shdr sh, sym_sh = {0};
	size_t shstrndx, prog_idx = 0, maps_idx = 0;
	Elf_Data *syms = NULL, *code;
	int n_funcs = 0;

	if (elf_version(EV_CURRENT) == EV_NONE) {
		snprintf(err, errlen, "libelf: %s", elf_errmsg(-1));
		return -EINVAL;
	}
	elf = elf_memory(buf, len);
	if (elf == NULL || gelf_getehdr(elf, &eh) == NULL || elf_getshdrstrndx(elf, &shstrndx)) {
		snprintf(err, errlen, "%s: not an ELF object (%s)", path, elf_errmsg(-1));
		goto out;
	}
	if (eh.e_machine != EM_BPF || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_ident[EI_DATA] != ELFDATA2LSB) {
		snprintf(err, errlen, "%s: not a little-endian 64-bit BPF object", path);
		goto out;
	}
	while ((scn = elf_nextscn(elf, scn)) != NULL) {
		const char *name;

		if (gelf_getshdr(scn, &sh) == NULL)
			continue;
		name = elf_strptr(elf, shstrndx, sh.sh_name);
		if (name == NULL)
			continue;
		if (sh.sh_type == SHT_SYMTAB) {
			sym_scn = scn;
			sym_sh = sh;
		} else if (strcmp(name, "policy") == 0 && sh.sh_type == SHT_PROGBITS) {
			prog_scn = scn;
			prog_idx = elf_ndxscn(scn);
		} else if (strcmp(name, ".maps") == 0) {
			maps_idx = elf_ndxscn(scn);
		} else if (strcmp(name, ".skygate.abi") == 0) {
			Elf_Data *d = elf_getdata(scn, NULL);
			uint32_t abi;

			if (d == NULL || d->d_size != sizeof(abi)) {
				snprintf(err, errlen, "%s: malformed .skygate.abi section", path);
				goto out;
			}
			memcpy(&abi, d->d_buf, sizeof(abi));
			if (abi < SKY_POLICY_ABI_MIN || abi > SKY_POLICY_ABI_VERSION) {
				snprintf(err, errlen,
					 "%s: built against policy ABI %u, the gateway has ABI %u "
					 "(and runs programs of ABI %u..%u): rebuild it with this "
					 "gateway's skygate/policy.h",
					 path, abi, SKY_POLICY_ABI_VERSION, SKY_POLICY_ABI_MIN,
					 SKY_POLICY_ABI_VERSION);
				goto out;
			}
			/* an older program sees the context of its version: the fields it
			 * knows are where they were (versions only add at the end) */
			o->abi = abi;
			o->ctx_size = abi == 1 ? SKY_POLICY_CTX_V1_SIZE
					       : (uint32_t)sizeof(struct sky_policy_ctx);
		}
	}
	if (prog_scn == NULL || sym_scn == NULL) {
		snprintf(err, errlen,
			 "%s: no SEC(\"policy\") program (declare it with "
			 "SKY_POLICY(name))",
			 path);
		goto out;
	}
	syms = elf_getdata(sym_scn, NULL);
	code = elf_getdata(prog_scn, NULL);
	if (syms == NULL || code == NULL || code->d_size % sizeof(struct ebpf_insn) != 0 ||
	    code->d_size == 0) {
		snprintf(err, errlen, "%s: empty or malformed SEC(\"policy\")", path);
		goto out;
	}
	for (size_t i = 0; i < sym_sh.sh_size / sym_sh.sh_entsize; i++) {
		GElf_Sym s;

		if (gelf_getsym(syms, (int)i, &s) == NULL)
			continue;
		if (GELF_ST_TYPE(s.st_info) == STT_FUNC && s.st_shndx == prog_idx) {
			n_funcs++;
			snprintf(o->prog_name, sizeof(o->prog_name), "%s",
				 elf_strptr(elf, sym_sh.sh_link, s.st_name));
		}
	}
	if (n_funcs != 1) {
		snprintf(err, errlen, "%s: SEC(\"policy\") holds %d programs, expected one", path,
			 n_funcs);
		goto out;
	}
	o->n_ins = (uint32_t)(code->d_size / sizeof(struct ebpf_insn));
	if (o->n_ins > POBJ_MAX_INSNS) {
		snprintf(err, errlen, "%s: %u instructions, at most %u", path, o->n_ins,
			 POBJ_MAX_INSNS);
		goto out;
	}
	o->ins = malloc(code->d_size);
	o->ld_map = malloc(sizeof(*o->ld_map) * o->n_ins);
	o->call_helper = malloc(sizeof(*o->call_helper) * o->n_ins);
	o->call_map = malloc(sizeof(*o->call_map) * o->n_ins);
	if (o->ins == NULL || o->ld_map == NULL || o->call_helper == NULL || o->call_map == NULL) {
		snprintf(err, errlen, "out of memory");
		rc = -ENOMEM;
		goto out;
	}
	memcpy(o->ins, code->d_buf, code->d_size);
	for (uint32_t i = 0; i < o->n_ins; i++) {
		o->ld_map[i] = -1;
		o->call_helper[i] = -1;
		o->call_map[i] = -1;
	}
	/* relocations of the program section */
	scn = NULL;
	while ((scn = elf_nextscn(elf, scn)) != NULL) {
		Elf_Data *rd;

		if (gelf_getshdr(scn, &sh) == NULL || sh.sh_type != SHT_REL ||
		    sh.sh_info != prog_idx)
			continue;
		rd = elf_getdata(scn, NULL);
		if (rd == NULL)
			continue;
		for (size_t i = 0; i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Rel rel;
			GElf_Sym s;
			const char *sname;
			uint32_t pc;
			struct ebpf_insn *ins;

			if (gelf_getrel(rd, (int)i, &rel) == NULL ||
			    gelf_getsym(syms, (int)GELF_R_SYM(rel.r_info), &s) == NULL) {
				snprintf(err, errlen, "%s: bad relocation", path);
				goto out;
			}
			sname = elf_strptr(elf, sym_sh.sh_link, s.st_name);
			if (sname == NULL)
				sname = "?";
			pc = (uint32_t)(rel.r_offset / sizeof(struct ebpf_insn));
			if (rel.r_offset % sizeof(struct ebpf_insn) != 0 || pc >= o->n_ins) {
				snprintf(err, errlen, "%s: relocation outside the program", path);
				goto out;
			}
			ins = &o->ins[pc];
			if (ins->code == CODE_LDDW) {
				int mi = s.st_shndx == maps_idx && maps_idx != 0
						 ? map_index(o, sname)
						 : -1;

				if (mi < 0 && s.st_shndx == SHN_UNDEF) {
					rc = pobj_refuse(err, errlen, pc, "unknown-helper",
							 "reference to unknown extern variable %s",
							 sname);
					goto out;
				}
				if (mi < 0) {
					rc = pobj_refuse(
						err, errlen, pc, "global-data",
						"reference to %s (not a map in SEC(\".maps\")): "
						"global data is not supported",
						sname);
					goto out;
				}
				o->ld_map[pc] = (int16_t)mi;
			} else if (ins->code == CODE_CALL) {
				int h = -1;

				if (s.st_shndx != SHN_UNDEF) {
					rc = pobj_refuse(err, errlen, pc, "bpf-call",
							 "BPF-to-BPF call of %s: mark the function "
							 "__always_inline",
							 GELF_ST_TYPE(s.st_info) == STT_SECTION
								 ? "a static function"
								 : sname);
					goto out;
				}
				for (int k = 0; k < PH_MAX; k++)
					if (strcmp(sname, phelper_names[k]) == 0)
						h = k;
				if (h < 0) {
					rc = pobj_refuse(err, errlen, pc, "unknown-helper",
							 "call of unknown helper or extern %s",
							 sname);
					goto out;
				}
				o->call_helper[pc] = (int8_t)h;
			} else {
				rc = pobj_refuse(err, errlen, pc, "opcode",
						 "relocation of %s on an unexpected instruction",
						 sname);
				goto out;
			}
		}
	}
	rc = 0;
out:
	if (elf != NULL)
		elf_end(elf);
	return rc;
}

int
pobj_load_mem(void *buf, size_t len, const char *path, struct pobj *o, char *err, size_t errlen)
{
	int rc;

	uint64_t t0 = policy_now_ns(), t1;

	memset(o, 0, sizeof(*o));
	rc = precheck(buf, len, path, err, errlen);
	if (rc == 0)
		rc = read_maps(buf, len, path, o, err, errlen);
	if (rc == 0)
		rc = read_code(buf, len, path, o, err, errlen);
	t1 = policy_now_ns();
	o->read_ns = t1 - t0;
	if (rc == 0)
		rc = pobj_check(o, err, errlen);
	o->check_ns = policy_now_ns() - t1;
	if (rc != 0)
		pobj_free(o);
	return rc;
}

void
pobj_free(struct pobj *o)
{
	free(o->ins);
	free(o->ld_map);
	free(o->call_helper);
	free(o->call_map);
	o->ins = NULL;
	o->ld_map = NULL;
	o->call_helper = NULL;
	o->call_map = NULL;
}
