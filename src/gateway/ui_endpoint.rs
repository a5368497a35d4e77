//! Hands `/ui` requests to the web UI ([`crate::ui`]): reads what the UI needs from the
//! request (a form body at most [`ui::MAX_FORM_BYTES`]), and writes its answer back.

use http::Method;
use pingora::protocols::http::ServerSession;

use super::respond;
use super::{header_str, io, query, read_small_body, Gateway, Handled, RequestCtx};
use crate::ui::{self, UiRequest};

impl Gateway {
    pub(super) async fn ui_endpoint(
        &self,
        session: &mut ServerSession,
        ctx: &mut RequestCtx,
    ) -> Handled {
        let request = ui_request(session, ctx).await?;
        let result = self
            .ui
            .handle(request.clone(), ctx.identity.clone(), ctx.live.clone())
            .await;
        let response = match result {
            Ok(response) => response,
            Err(error) => {
                ctx.error_code = Some(error.code());
                if error.is_server_fault() {
                    tracing::error!(error = ?error, "web ui request failed");
                }
                let status = respond::ui_status(&error);
                self.ui
                    .error_response(&request, status, &error, ctx.live.clone())
            }
        };
        respond::ui(session, response).await.map_err(io)
    }
}

/// The parts of the request the UI reads; a POST's form body is read here.
async fn ui_request(
    session: &mut ServerSession,
    ctx: &RequestCtx,
) -> Result<UiRequest, respond::Refusal> {
    let text = |name: http::header::HeaderName| header_str(session, name).map(str::to_string);
    let mut request = UiRequest {
        method: ctx.method.clone(),
        path: session.req_header().uri.path().to_string(),
        query: query(session),
        cookie: text(http::header::COOKIE),
        host: text(http::header::HOST),
        origin: text(http::header::ORIGIN),
        form: Default::default(),
        client: ctx.client_ip.clone(),
        certificate: ctx.certificate.clone(),
    };
    if ctx.method == Method::POST {
        let is_form = header_str(session, http::header::CONTENT_TYPE)
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        let body = read_small_body(session, ui::MAX_FORM_BYTES).await?;
        if is_form {
            for (key, value) in form_urlencoded::parse(&body) {
                request
                    .form
                    .entry(key.into_owned())
                    .or_insert_with(|| value.into_owned());
            }
        }
    }
    Ok(request)
}
