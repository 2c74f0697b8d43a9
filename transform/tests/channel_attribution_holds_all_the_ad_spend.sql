{#-
  With ad spend (the dbt var `ad_spend`), each attribution model of channel_attribution holds
  all of it, once: none lost for a channel without leads, none doubled. Without, no rows.
-#}
{%- set spend = ad_spend_relation() %}
{%- if spend is none %}

select 1 as no_ad_spend where 1 = 0
{%- else %}
{%- set project = has_project_column() %}

with given as (

    select
        {{ 'project, ' if project }}sum(cast(spend as {{ type_double() }})) * 100 as spend_cents
    from {{ spend }}
    {{ 'group by project' if project }}

),

models as (

    {%- for model in attribution_models() %}
    select '{{ model }}' as attribution_model{{ ' union all' if not loop.last }}
    {%- endfor %}

),

held as (

    select {{ with_project('attribution_model') }}, sum(spend_cents) as spend_cents
    from {{ ref('channel_attribution') }}
    group by {{ with_project('attribution_model') }}

)

select {{ 'given.project, ' if project }}models.attribution_model, given.spend_cents, held.spend_cents as held_cents
from given
cross join models
left join held
    on held.attribution_model = models.attribution_model
    {{ same_project('held', 'given') }}
where held.spend_cents is null
    or abs(held.spend_cents - given.spend_cents) > 1e-9 * greatest(given.spend_cents, 1)
{%- endif %}
