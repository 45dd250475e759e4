//! `fields`: the schema of a configuration type as a table.

use std::io::Write;

use crate::hot_reload::HotReload;

/// Writes the schema of `C` as a table.
pub fn fields<C: HotReload>(out: &mut dyn Write) -> std::io::Result<()> {
    let schema = C::schema();
    let path_width = schema
        .iter()
        .map(|f| f.path.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let class_width = schema
        .iter()
        .map(|f| f.class.as_str().len())
        .max()
        .unwrap_or(5)
        .max(5);
    writeln!(
        out,
        "{:path_width$}  {:class_width$}  SECRET  DOC",
        "PATH", "CLASS"
    )?;
    for field in schema {
        let mut doc = field.doc.to_string();
        if field.watch {
            doc = format!("(watched file) {doc}");
        }
        writeln!(
            out,
            "{:path_width$}  {:class_width$}  {:6}  {}",
            field.path,
            field.class.as_str(),
            if field.secret { "yes" } else { "" },
            doc.trim()
        )?;
    }
    Ok(())
}
