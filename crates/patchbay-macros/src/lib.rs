//! Attribute macros for the patchbay kernel.
//!
//! * [`macro@kernel_test`] registers a function as an in-kernel test case, run by the kernel's
//!   custom test runner inside QEMU (`make test`).
//! * [`macro@patchable`] gives a function Linux's arm64 CALL_OPS patch-site layout and registers
//!   it in the kernel's site registry.
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

use patchbay_pure::sites::{ArgClass, ArgRegs};
use proc_macro::TokenStream;
use quote::{format_ident, quote};
use syn::{GenericArgument, ItemFn, PathArguments, ReturnType, Type, parse_macro_input};

/// Register `fn name()` as a kernel test case.
///
/// ```ignore
/// #[kernel_test]
/// fn heap_allocates() {
///     let v = alloc::vec![1, 2, 3];
///     assert_eq!(v.iter().sum::<i32>(), 6);
/// }
/// ```
///
/// The function must take no arguments and return `()`; it fails by panicking. The test is only
/// compiled into test builds (`cfg(test)` in the kernel library, always in `tests/*.rs`).
#[proc_macro_attribute]
pub fn kernel_test(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        return syn::Error::new(
            proc_macro2::Span::call_site(),
            "#[kernel_test] takes no arguments",
        )
        .to_compile_error()
        .into();
    }
    let f = parse_macro_input!(item as ItemFn);
    if !f.sig.inputs.is_empty() || !matches!(f.sig.output, syn::ReturnType::Default) {
        return syn::Error::new_spanned(
            &f.sig,
            "a #[kernel_test] function takes no arguments and returns ()",
        )
        .to_compile_error()
        .into();
    }
    let name = &f.sig.ident;
    let case = format_ident!("__KERNEL_TEST_{}", name.to_string().to_uppercase());
    let name_str = name.to_string();
    quote! {
        #f

        #[test_case]
        #[allow(non_upper_case_globals)]
        const #case: ::patchbay::ktest::TestCase = ::patchbay::ktest::TestCase {
            name: concat!(module_path!(), "::", #name_str),
            func: #name,
        };
    }
    .into()
}

/// Make a function a live-patchable site, laid out like Linux arm64 with CALL_OPS
/// (`-fpatchable-function-entry=4,2`, 8-byte function alignment):
///
/// ```text
///   func-8:  nop ; nop    8-byte, 8-aligned literal slot (the site's ops pointer)
///   func+0:  nop          -> mov x9, x30   (written once, when the site is first armed)
///   func+4:  nop          <-> bl target    (the only word toggled while others may run it)
///   func+8:  the compiled body
/// ```
///
/// and registers `(address, name, argument registers)` in the `.patchbay.sites` linker section,
/// which the kernel cross-checks at boot against the compiler's own
/// `__patchable_function_entries`.
///
/// The argument registers ([`ArgRegs`]) are what a trampoline running a handler before the body
/// must preserve. The macro classifies each parameter from its spelling (integers, `bool`,
/// `char`, floats — general registers on this target —, thin pointers and references,
/// `Option<&T>`, `NonNull<T>`, `Box<T>`: one register; `u128`/`i128`: an even-aligned pair;
/// `&[T]`, `&str`, `&dyn Trait`, `*const [T]`, `Box<dyn Trait>`: two; anything else, such as
/// aggregates and tuples by value, arrays or unknown paths: unknown, which makes the site save
/// x0–x8) and the return type (anything but a scalar, a fat pointer or a 128-bit integer may come
/// back through memory, making x8 live). The compiler then checks each proof: the macro emits
/// `const` assertions that every one-register type is at most 8 bytes and every pair exactly 16,
/// so a type the spelling misleads about (a reference to a dynamically sized type hidden behind
/// a path) fails to compile instead of being traced with a register missing.
/// The function is never inlined (a call must reach the site). Generic, `async` and `const`
/// functions are refused: each must be exactly one function in the image.
///
/// ```ignore
/// #[patchable]
/// pub fn leaf() { core::hint::black_box(()); }
/// ```
///
/// The crate using it needs `#![feature(patchable_function_entry)]` and the kernel's build flags
/// (`-Z min-function-alignment=8`, set in `.cargo/config.toml`).
#[proc_macro_attribute]
pub fn patchable(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        return syn::Error::new(
            proc_macro2::Span::call_site(),
            "#[patchable] takes no arguments",
        )
        .to_compile_error()
        .into();
    }
    let f = parse_macro_input!(item as ItemFn);
    let sig = &f.sig;
    let refuse = |msg: &str| syn::Error::new_spanned(sig, msg).to_compile_error().into();
    if !sig.generics.params.is_empty() {
        return refuse(
            "#[patchable] functions cannot be generic: each must be one function in the image",
        );
    }
    if sig.asyncness.is_some() || sig.constness.is_some() {
        return refuse("#[patchable] functions cannot be async or const");
    }
    if sig
        .inputs
        .iter()
        .any(|a| matches!(a, syn::FnArg::Receiver(_)))
    {
        return refuse("#[patchable] is for free functions, not methods");
    }
    let mut classes = Vec::new();
    let mut proofs = Vec::new();
    for arg in &sig.inputs {
        let syn::FnArg::Typed(pat) = arg else {
            unreachable!("receivers were refused above")
        };
        let ty = &pat.ty;
        let class = classify(ty);
        classes.push(class);
        let size = quote! { ::core::mem::size_of::<#ty>() };
        proofs.push(match class {
            ArgClass::Word => quote! {
                assert!(#size <= 8, "#[patchable] took this parameter for one register, but its type is larger than 8 bytes");
            },
            ArgClass::Pair => quote! {
                assert!(#size == 16, "#[patchable] took this parameter for a pointer and a length, but its type is not 16 bytes");
            },
            ArgClass::Int128 => quote! {
                assert!(#size == 16 && ::core::mem::align_of::<#ty>() == 16, "#[patchable] took this parameter for a 128-bit integer, but its type is not 16 bytes, 16-aligned");
            },
            ArgClass::Unknown => quote! {},
        });
    }
    let arg_regs = ArgRegs::classify(&classes, returns_in_memory(&sig.output)).bits();
    let name = &sig.ident;
    let name_str = name.to_string();
    let attrs = &f.attrs;
    let vis = &f.vis;
    let block = &f.block;
    quote! {
        #(#attrs)*
        #[patchable_function_entry(prefix_nops = 2, entry_nops = 2)]
        #[inline(never)]
        #vis #sig #block

        const _: () = {
            #[used]
            #[unsafe(link_section = ".patchbay.sites")]
            static SITE: ::patchbay::patch::sites::SiteDesc = ::patchbay::patch::sites::SiteDesc {
                func: #name as *const (),
                name: concat!(module_path!(), "::", #name_str),
                arg_regs: #arg_regs,
            };
            #(#proofs)*
        };
    }
    .into()
}

/// How the parameter type `ty` is passed (see [`macro@patchable`]); `Unknown` unless proved.
fn classify(ty: &Type) -> ArgClass {
    match ty {
        Type::Paren(p) => classify(&p.elem),
        Type::Group(g) => classify(&g.elem),
        Type::Reference(r) => pointer_to(&r.elem),
        Type::Ptr(p) => pointer_to(&p.elem),
        Type::BareFn(_) => ArgClass::Word,
        Type::Path(p) if p.qself.is_none() => {
            let Some(last) = p.path.segments.last() else {
                return ArgClass::Unknown;
            };
            match (
                last.ident.to_string().as_str(),
                single_type_arg(&last.arguments),
            ) {
                (
                    "u8" | "u16" | "u32" | "u64" | "usize" | "i8" | "i16" | "i32" | "i64" | "isize"
                    | "bool" | "char" | "f32" | "f64",
                    None,
                ) => ArgClass::Word,
                ("u128" | "i128", None) => ArgClass::Int128,
                ("NonNull" | "Box", Some(inner)) => pointer_to(inner),
                // The null pointer is the niche: `Option<&T>` is one thin pointer.
                ("Option", Some(inner)) => match classify(inner) {
                    ArgClass::Word if is_pointer(inner) => ArgClass::Word,
                    ArgClass::Pair if is_pointer(inner) => ArgClass::Pair,
                    _ => ArgClass::Unknown,
                },
                _ => ArgClass::Unknown,
            }
        }
        _ => ArgClass::Unknown,
    }
}

/// A pointer to `pointee`: fat (pointer and length or vtable) for slices, `str` and trait
/// objects, thin otherwise (checked by the size assertion).
fn pointer_to(pointee: &Type) -> ArgClass {
    match pointee {
        Type::Slice(_) | Type::TraitObject(_) => ArgClass::Pair,
        Type::Path(p) if p.qself.is_none() && p.path.is_ident("str") => ArgClass::Pair,
        Type::Paren(p) => pointer_to(&p.elem),
        _ => ArgClass::Word,
    }
}

/// Is `ty` a reference, raw pointer, `NonNull`, `Box` or function pointer (never null, so an
/// `Option` of it is the same size)?
fn is_pointer(ty: &Type) -> bool {
    match ty {
        Type::Reference(_) | Type::BareFn(_) => true,
        Type::Path(p) => p
            .path
            .segments
            .last()
            .is_some_and(|s| s.ident == "NonNull" || s.ident == "Box"),
        _ => false,
    }
}

/// The one type argument of `Name<T>`, if that is what `args` is.
fn single_type_arg(args: &PathArguments) -> Option<&Type> {
    let PathArguments::AngleBracketed(a) = args else {
        return None;
    };
    match a.args.iter().collect::<Vec<_>>()[..] {
        [GenericArgument::Type(t)] => Some(t),
        _ => None,
    }
}

/// May the function return through memory (the caller's buffer address in x8)? Only results
/// proved to travel in x0/x1 say no.
fn returns_in_memory(output: &ReturnType) -> bool {
    match output {
        ReturnType::Default => false,
        ReturnType::Type(_, ty) => match &**ty {
            Type::Never(_) => false,
            Type::Tuple(t) if t.elems.is_empty() => false,
            ty => classify(ty) == ArgClass::Unknown,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(ty: &str) -> ArgClass {
        classify(&syn::parse_str(ty).unwrap())
    }

    fn in_memory(ret: &str) -> bool {
        returns_in_memory(&syn::parse_str(ret).unwrap())
    }

    #[test]
    fn scalars_pointers_and_references_are_one_register() {
        for t in [
            "u8",
            "i32",
            "u64",
            "usize",
            "bool",
            "char",
            "f64",
            "f32",
            "*const u8",
            "*mut Foo",
            "&u64",
            "&mut Foo",
            "&'static Bar",
            "Option<&T>",
            "Option<&mut Foo>",
            "core::ptr::NonNull<u8>",
            "Option<NonNull<u8>>",
            "Box<Foo>",
            "fn(u64) -> u64",
            "core::primitive::u64",
            "(u64)",
        ] {
            assert_eq!(class(t), ArgClass::Word, "{t}");
        }
    }

    #[test]
    fn fat_pointers_are_two_registers() {
        for t in [
            "&[u8]",
            "&mut [u64]",
            "&str",
            "&'static str",
            "*const [u8]",
            "*mut str",
            "&dyn Fn()",
            "&(dyn Fn() + Sync)",
            "Box<dyn Fn()>",
            "Box<[u8]>",
            "NonNull<[u8]>",
            "Option<&[u8]>",
            "Option<Box<dyn Fn()>>",
        ] {
            assert_eq!(class(t), ArgClass::Pair, "{t}");
        }
    }

    #[test]
    fn int128_is_a_pair_class_of_its_own() {
        assert_eq!(class("u128"), ArgClass::Int128);
        assert_eq!(class("i128"), ArgClass::Int128);
    }

    #[test]
    fn what_cannot_be_proved_is_unknown() {
        for t in [
            "Foo",
            "(u64, u64)",
            "()",
            "[u64; 4]",
            "Option<u64>",
            "Option<Foo>",
            "Vec<u8>",
            "Result<u64, E>",
            "impl Fn()",
            "<T as Tr>::X",
            "Option<Option<&u8>>",
        ] {
            assert_eq!(class(t), ArgClass::Unknown, "{t}");
        }
    }

    #[test]
    fn returns_through_memory_unless_proved_in_registers() {
        for r in [
            "",
            "-> ()",
            "-> !",
            "-> u64",
            "-> u128",
            "-> &str",
            "-> Option<&Foo>",
        ] {
            assert!(!in_memory(r), "{r}");
        }
        for r in [
            "-> Big",
            "-> (u64, u64, u64)",
            "-> [u64; 8]",
            "-> Option<u64>",
        ] {
            assert!(in_memory(r), "{r}");
        }
    }

    #[test]
    fn a_slice_and_a_large_return_save_three_registers() {
        let r = ArgRegs::classify(&[class("&[u64]")], in_memory("-> Big"));
        assert_eq!((r.regs, r.x8, r.saved()), (2, true, 3));
    }
}
