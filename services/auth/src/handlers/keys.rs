use actix_web::{HttpResponse, web};

use crate::AppState;

/// The public signing keys; verifiers cache them and refetch on an unknown `kid`.
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .json(state.signer.jwks())
}
