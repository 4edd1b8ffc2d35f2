//! Attribute macros for the patchbay kernel.
//!
//! * [`macro@kernel_test`] registers a function as an in-kernel test case, run by the kernel's
//!   custom test runner inside QEMU (`make test`).
//! * [`macro@patchable`] gives a function Linux's arm64 CALL_OPS patch-site layout and registers
//!   it in the kernel's site registry.
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

use proc_macro::TokenStream;
use quote::{format_ident, quote};
use syn::{ItemFn, parse_macro_input};

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
/// and registers `(address, name, argument count)` in the `.patchbay.sites` linker section, which
/// the kernel cross-checks at boot against the compiler's own `__patchable_function_entries`.
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
    let nargs = sig.inputs.len() as u32;
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
                nargs: #nargs,
            };
        };
    }
    .into()
}
