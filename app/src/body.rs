//! Request bodies whose refusal never carries what they held. Rocket logs a
//! failed data guard's error, and its own guards put the input there: `Json`
//! the raw text (a login sent as `{"password": 123456789}` would put the
//! password in the log), `Form` each refused field's value (S12).
//! `JsonBody` reads the body the same way (the `json` limit) and fails with
//! where and what kind of fault only; `FormBody` is Rocket's `Form` with
//! its errors cut down to the fields' names. The answer a client gets is the
//! usual error body.
use std::ops::Deref;

use rocket::data::{self, Data, FromData, ToByteUnit};
use rocket::form::{Form, FromForm};
use rocket::http::Status;
use rocket::request::Request;
use serde::de::DeserializeOwned;

/// A request body parsed as JSON into `T`.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T> JsonBody<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for JsonBody<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Why a body was refused: the kind of fault and where; never its text.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyError {
    TooLarge,
    Unreadable,
    /// Not JSON (or cut short) at this line and column.
    Syntax {
        line: usize,
        column: usize,
    },
    /// JSON, but not of the expected shape (a missing field, a number for a string).
    Shape {
        line: usize,
        column: usize,
    },
}

/// Parse `text` as `T`, keeping only where and what kind of fault.
pub fn parse<T: DeserializeOwned>(text: &str) -> Result<T, BodyError> {
    serde_json::from_str(text).map_err(|e| {
        let (line, column) = (e.line(), e.column());
        match e.classify() {
            serde_json::error::Category::Data => BodyError::Shape { line, column },
            _ => BodyError::Syntax { line, column },
        }
    })
}

#[rocket::async_trait]
impl<'r, T: DeserializeOwned> FromData<'r> for JsonBody<T> {
    type Error = BodyError;

    async fn from_data(req: &'r Request<'_>, data: Data<'r>) -> data::Outcome<'r, Self> {
        let limit = req.limits().get("json").unwrap_or(1.mebibytes());
        let text = match data.open(limit).into_string().await {
            Ok(text) if text.is_complete() => text.into_inner(),
            Ok(_) => return data::Outcome::Error((Status::PayloadTooLarge, BodyError::TooLarge)),
            Err(_) => return data::Outcome::Error((Status::BadRequest, BodyError::Unreadable)),
        };
        match parse(&text) {
            Ok(value) => data::Outcome::Success(JsonBody(value)),
            // As Rocket's `Json` answers: 422 for a body it could not parse.
            Err(e) => data::Outcome::Error((Status::UnprocessableEntity, e)),
        }
    }
}

/// A form body parsed into `T` by Rocket's `Form`.
#[derive(Debug)]
pub struct FormBody<T>(pub T);

impl<T> Deref for FormBody<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// The fields a form was refused for, by name; never their values.
#[derive(Debug, PartialEq, Eq)]
pub struct FormFault(pub Vec<String>);

#[rocket::async_trait]
impl<'r, T: FromForm<'r>> FromData<'r> for FormBody<T> {
    type Error = FormFault;

    async fn from_data(req: &'r Request<'_>, data: Data<'r>) -> data::Outcome<'r, Self> {
        match Form::<T>::from_data(req, data).await {
            data::Outcome::Success(form) => data::Outcome::Success(FormBody(form.into_inner())),
            data::Outcome::Forward(forward) => data::Outcome::Forward(forward),
            data::Outcome::Error((status, errors)) => {
                let fields =
                    errors.iter().map(|e| e.name.as_ref().map(|n| n.to_string()).unwrap_or_default()).collect();
                data::Outcome::Error((status, FormFault(fields)))
            }
        }
    }
}

/// The name of the hidden field every page form carries its form token in.
pub const TOKEN_FIELD: &str = "csrf";

/// A form's fields as `T`, and apart from them the form token, which `T`
/// never declares. Checking the token is the pages' form guard's (`PageForm`).
#[derive(Debug)]
pub struct WithToken<T> {
    pub token: Option<String>,
    pub fields: T,
}

#[rocket::async_trait]
impl<'r, T: FromForm<'r>> FromForm<'r> for WithToken<T> {
    type Context = (Option<String>, T::Context);

    fn init(opts: rocket::form::Options) -> Self::Context {
        (None, T::init(opts))
    }

    fn push_value(ctxt: &mut Self::Context, field: rocket::form::ValueField<'r>) {
        if field.name.source().as_str() == TOKEN_FIELD {
            ctxt.0 = Some(field.value.to_string());
        } else {
            T::push_value(&mut ctxt.1, field);
        }
    }

    async fn push_data(ctxt: &mut Self::Context, field: rocket::form::DataField<'r, '_>) {
        T::push_data(&mut ctxt.1, field).await;
    }

    fn finalize(ctxt: Self::Context) -> rocket::form::Result<'r, Self> {
        Ok(WithToken { token: ctxt.0, fields: T::finalize(ctxt.1)? })
    }
}

/// A form with no fields but its token (a button that only posts).
#[derive(Debug, Default)]
pub struct NoFields;

#[rocket::async_trait]
impl<'r> FromForm<'r> for NoFields {
    type Context = ();

    fn init(_: rocket::form::Options) {}

    fn push_value(_: &mut (), _: rocket::form::ValueField<'r>) {}

    async fn push_data(_: &mut (), _: rocket::form::DataField<'r, '_>) {}

    fn finalize(_: ()) -> rocket::form::Result<'r, Self> {
        Ok(NoFields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Login {
        email: String,
        password: String,
    }

    #[test]
    fn a_refused_body_says_where_and_what_but_never_what_it_held() {
        let wrong_type = parse::<Login>(r#"{"email": "a@example.jp", "password": 123456789}"#).unwrap_err();
        assert!(matches!(wrong_type, BodyError::Shape { line: 1, .. }), "{wrong_type:?}");
        let broken = parse::<Login>(r#"{"email": "secret@example.jp", "password": "#).unwrap_err();
        assert!(matches!(broken, BodyError::Syntax { .. }), "{broken:?}");
        for e in [wrong_type, broken] {
            let shown = format!("{e:?}");
            assert!(!shown.contains("123456789") && !shown.contains("secret@"), "{shown}");
        }
    }
}
